CREATE FUNCTION govinbox_intake(
    p_account_id integer,
    p_platform text,
    p_dedupe_key text,
    p_sender_id text,
    p_msg_type text,
    p_event_type text,        -- normalised: 'subscribe', 'unsubscribe', or the platform's name
    p_sent_at timestamptz,
    p_payload text,
    p_content text,           -- NULL: nothing a citizen asked (an event, an unknown type)
    p_platform_msg_id text,
    p_channel text,
    p_now timestamptz,
    p_open_window interval,
    p_quiet interval,         -- routing waits this long after the latest fragment
    p_ack_template text,      -- NULL: answer plain success
    p_reply_timestamp text,
    p_reply_nonce text,
    p_grants jsonb,           -- subscription-notification decisions: [{template_id, status}]
    p_rating_window interval, -- digits are a rating this long after the rating prompt
    p_media_id text           -- a picture, voice or video to fetch before the platform drops it
) RETURNS TABLE (
    inbox_event_id bigint, duplicate boolean, inquiry_id bigint, reference text, opened boolean,
    ack_text text, reply_timestamp text, reply_nonce text
)
LANGUAGE plpgsql
-- A retry waits on the first delivery's row; past this it gets an error (503) and WeChat, whose
-- budget is 5 s, retries again rather than hanging.
SET lock_timeout = '3s'
AS $fn$
DECLARE
    v_event_id bigint;
    v_inquiry_id bigint;
    v_reference text;
    v_last timestamptz;
    v_seq integer;
    v_number bigint;
    v_previous bigint;
    v_ack text;
    v_code text;
    v_text text;
    v_asked text;
    v_digits text;
    v_rated bigint;
    v_rating bigint;
    v_replied boolean;
    v_media bigint;
    v_status text;
BEGIN
    INSERT INTO inbox_event AS e (account_id, platform, dedupe_key, sender_id, msg_type,
                                  event_type, sent_at, payload, received_at)
    VALUES (p_account_id, p_platform, p_dedupe_key, p_sender_id, p_msg_type,
            p_event_type, p_sent_at, p_payload, p_now)
    ON CONFLICT (account_id, dedupe_key) DO NOTHING
    RETURNING e.id INTO v_event_id;

    IF v_event_id IS NULL THEN
        -- A retry: the first delivery has committed (we waited on its row); answer the same.
        RETURN QUERY
            SELECT e.id, true, e.inquiry_id, i.reference::text, false,
                   e.ack_text, e.reply_timestamp::text, e.reply_nonce::text
            FROM inbox_event e LEFT JOIN inquiry i ON i.id = e.inquiry_id
            WHERE e.account_id = p_account_id AND e.dedupe_key = p_dedupe_key;
        RETURN;
    END IF;

    INSERT INTO follower AS f (account_id, citizen_id, subscribed_at, unsubscribed_at, last_message_at)
    VALUES (p_account_id, p_sender_id,
            CASE WHEN p_event_type = 'subscribe' THEN p_sent_at END,
            CASE WHEN p_event_type = 'unsubscribe' THEN p_sent_at END,
            -- What opens the platform's window to the citizen: a private message of theirs.
            CASE WHEN p_content IS NOT NULL AND p_channel = 'private_message' THEN p_sent_at END)
    ON CONFLICT (account_id, citizen_id) DO UPDATE SET
        subscribed_at = GREATEST(f.subscribed_at, EXCLUDED.subscribed_at),
        unsubscribed_at = GREATEST(f.unsubscribed_at, EXCLUDED.unsubscribed_at),
        last_message_at = GREATEST(f.last_message_at, EXCLUDED.last_message_at);

    -- 订阅通知: the citizen accepted or refused the account's notification templates (the
    -- popup, or a later change in settings); the latest decision per template holds.
    INSERT INTO notification_grant AS g (account_id, citizen_id, template_id, accepted, decided_at)
    SELECT DISTINCT ON (d ->> 'template_id')  -- a template named twice: its last decision
           p_account_id, p_sender_id, d ->> 'template_id', d ->> 'status' = 'accept', p_sent_at
      FROM jsonb_array_elements(COALESCE(p_grants, '[]'::jsonb)) WITH ORDINALITY AS t (d, n)
     ORDER BY d ->> 'template_id', n DESC
    ON CONFLICT (account_id, citizen_id, template_id) DO UPDATE SET
        accepted = EXCLUDED.accepted, decided_at = EXCLUDED.decided_at
     WHERE g.decided_at <= EXCLUDED.decided_at;

    IF p_event_type IN ('PUBLISHJOBFINISH', 'MASSSENDJOBFINISH') THEN
        -- What the account published: recorded by a job from this stored event.
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'routing', 'record_publication', 0, NULL, NULL,
            jsonb_build_object('inbox_event_id', v_event_id), NULL
        )::procrastinate_job_to_defer_v1]);
    END IF;

    IF p_event_type = 'unsubscribe' THEN
        -- The citizen can no longer be reached on this account: what waits for them fails,
        -- visibly (the job locks each inquiry and delivery in the usual order).
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'routing', 'citizen_unfollowed', 0, NULL, NULL,
            jsonb_build_object('account_id', p_account_id, 'citizen_id', p_sender_id), NULL
        )::procrastinate_job_to_defer_v1]);
    END IF;

    IF p_content IS NULL THEN
        RETURN QUERY SELECT v_event_id, false, NULL::bigint, NULL::text, false,
                            NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;

    -- What the citizen asks of the service itself is answered at once (a passive reply) and
    -- never opens or joins an inquiry: "查询 <reference>", and digits while a rating prompt of
    -- theirs is outstanding. Full-width digits and letters count as their ASCII forms.
    IF p_channel = 'private_message' AND p_msg_type = 'text' THEN
        v_text := upper(translate(p_content, '０１２３４５６７８９ＷＸＢｗｘｂ－　',
                                  '0123456789WXBwxb- '));
        v_asked := substring(v_text FROM '^\s*查询\s*[:：]?\s*(W[XB][0-9]{8}-[0-9]{6,12})\s*$');
        IF v_asked IS NOT NULL THEN
            -- Only the citizen's own inquiry on this account: another's says nothing more
            -- than an unknown one.
            SELECT '您的留言（编号' || i.reference || '）' || govinbox_citizen_status(i.status, i.department_id IS NOT NULL)
                   || CASE WHEN i.status IN ('new', 'assigned') AND i.reply_due_at IS NOT NULL
                           THEN '，将于' || to_char(i.reply_due_at AT TIME ZONE 'Asia/Shanghai',
                                                  'FMYYYY"年"FMMM"月"FMDD"日"') || '前答复'
                           ELSE '' END || '。'
              INTO v_ack
              FROM inquiry i
             WHERE i.reference = v_asked AND i.account_id = p_account_id
               AND i.citizen_id = p_sender_id;
            v_ack := COALESCE(v_ack, '未找到编号为' || v_asked || '的留言，请核对编号后再试。');
        ELSE
            v_digits := substring(v_text FROM '^\s*([12]?)\s*([1-5])\s*$');
            IF v_digits IS NOT NULL THEN
                -- Only the citizen's latest prompt counts, and only once: digits after it was
                -- answered are a message, never a rating of an older inquiry.
                SELECT i.id, i.reference INTO v_rated, v_asked
                  FROM inquiry i
                 WHERE i.account_id = p_account_id AND i.citizen_id = p_sender_id
                   AND i.rating_prompted_at > p_now - p_rating_window
                 ORDER BY i.rating_prompted_at DESC
                 LIMIT 1;
                IF v_rated IS NOT NULL AND EXISTS (
                       SELECT 1 FROM rating r JOIN inquiry i ON i.id = r.inquiry_id
                        WHERE r.inquiry_id = v_rated AND r.rated_at >= i.rating_prompted_at) THEN
                    v_rated := NULL;
                END IF;
                IF v_rated IS NOT NULL THEN
                    INSERT INTO rating (inquiry_id, solved, satisfaction, rated_at, inbox_event_id)
                    SELECT v_rated,
                           CASE m[1] WHEN '1' THEN true WHEN '2' THEN false END,
                           m[2]::smallint, p_now, v_event_id
                      FROM regexp_match(v_text, '^\s*([12]?)\s*([1-5])\s*$') AS m
                    RETURNING id INTO v_rating;
                    PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
                        'routing', 'rating_received', 0, NULL, NULL,
                        jsonb_build_object('rating_id', v_rating), NULL
                    )::procrastinate_job_to_defer_v1]);
                    v_ack := '感谢您对编号' || v_asked || '的答复作出评价！';
                END IF;
            END IF;
        END IF;
        IF v_ack IS NOT NULL THEN
            -- A message all the same: the platform's window to the citizen opens again, and what
            -- waited for it goes out.
            PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
                'routing', 'citizen_wrote', 0, NULL, NULL,
                jsonb_build_object('account_id', p_account_id, 'citizen_id', p_sender_id), NULL
            )::procrastinate_job_to_defer_v1]);
            UPDATE inbox_event SET ack_text = v_ack, reply_timestamp = p_reply_timestamp,
                   reply_nonce = p_reply_nonce
             WHERE id = v_event_id;
            RETURN QUERY SELECT v_event_id, false, NULL::bigint, NULL::text, false, v_ack,
                                p_reply_timestamp, p_reply_nonce;
            RETURN;
        END IF;
    END IF;

    -- The follower row just upserted stays locked until commit: it is the per-citizen lock that
    -- makes two messages of one citizen take turns here. The partial unique index on open
    -- inquiries is the invariant behind it.
    IF p_channel = 'private_message' THEN
        SELECT i.id, i.reference, i.last_message_at, i.status
          INTO v_inquiry_id, v_reference, v_last, v_status
          FROM inquiry i
         WHERE i.account_id = p_account_id AND i.citizen_id = p_sender_id AND i.accepts_messages
           FOR NO KEY UPDATE;
        -- After the answer (`replied`) the window counts from the answer, however long it took:
        -- the citizen's next message within it is a follow-up.
        IF v_inquiry_id IS NOT NULL
           AND GREATEST(v_last, CASE WHEN v_status = 'replied' THEN
                   (SELECT max(r.created_at) FROM reply r
                     WHERE r.inquiry_id = v_inquiry_id AND r.purpose = 'answer') END)
               < p_now - p_open_window
           AND NOT EXISTS (SELECT 1 FROM deadline_pause p
                             JOIN inquiry q ON q.id = p.inquiry_id
                            WHERE p.inquiry_id = v_inquiry_id
                              AND p.reason = 'awaiting_citizen'
                              AND p.status = 'running'
                              AND q.status IN ('new', 'assigned')) THEN
            UPDATE inquiry SET accepts_messages = false, updated_at = p_now WHERE id = v_inquiry_id;
            INSERT INTO inquiry_event (inquiry_id, at, actor, action, reason, details)
            VALUES (v_inquiry_id, p_now, 'system:intake', 'conversation_closed',
                    'no message within the conversation window; the next one opens a new inquiry',
                    jsonb_build_object('last_message_at', v_last, 'inbox_event_id', v_event_id));
            v_inquiry_id := NULL;
        END IF;
    END IF;

    IF v_inquiry_id IS NULL THEN
        -- A sequence, not a counter row: a row every new inquiry updates would be held locked
        -- until each commit and serialise all intake (measured: bench/intake.py).
        v_number := nextval(CASE p_platform WHEN 'wechat' THEN 'inquiry_reference_wechat'
                                            ELSE 'inquiry_reference_weibo' END);
        v_reference := CASE p_platform WHEN 'wechat' THEN 'WX' ELSE 'WB' END
                       || to_char(p_now AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')
                       || '-' || lpad(v_number::text, greatest(6, length(v_number::text)), '0');

        -- The citizen's previous conversation on the account: private messages only (a public
        -- comment is no thread of theirs, and no repeat appeal).
        IF p_channel = 'private_message' THEN
            SELECT i.id INTO v_previous FROM inquiry i
             WHERE i.account_id = p_account_id AND i.citizen_id = p_sender_id
               AND i.channel = 'private_message'
             ORDER BY i.id DESC LIMIT 1;
        END IF;

        INSERT INTO inquiry (reference, account_id, platform, channel, citizen_id, received_at,
                             kind, status, accepts_messages, last_message_at, message_count,
                             previous_inquiry_id, possible_repeat, urgent, query_code,
                             created_at, updated_at)
        VALUES (v_reference, p_account_id, p_platform, p_channel, p_sender_id, p_now,
                'other', 'new', p_channel = 'private_message', p_now, 1,
                -- Written again after the previous one was closed: perhaps a repeat appeal.
                v_previous, COALESCE((SELECT q.status = 'closed' FROM inquiry q
                                       WHERE q.id = v_previous), false),
                false, govinbox_query_code(), p_now, p_now)
        RETURNING id, query_code INTO v_inquiry_id, v_code;
        INSERT INTO inquiry_message (inquiry_id, seq, platform_msg_id, inbox_event_id, msg_type, content, sent_at)
        VALUES (v_inquiry_id, 1, p_platform_msg_id, v_event_id, p_msg_type, p_content, p_sent_at);
        IF p_media_id IS NOT NULL THEN
            -- Fetched by a durable job before the platform drops it (3 days).
            INSERT INTO media (inquiry_id, inbox_event_id, seq, kind, platform_media_id, status,
                               created_at, updated_at)
            VALUES (v_inquiry_id, v_event_id, 1, p_msg_type, p_media_id, 'pending', p_now, p_now)
            RETURNING id INTO v_media;
            PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
                'routing', 'fetch_media', 0, NULL, NULL, jsonb_build_object('media_id', v_media),
                NULL)::procrastinate_job_to_defer_v1]);
        END IF;
        INSERT INTO inquiry_event (inquiry_id, at, actor, action, to_status, reason, details)
        VALUES (v_inquiry_id, p_now, 'system:intake', 'created', 'new', '',
                jsonb_build_object('inbox_event_id', v_event_id, 'previous_inquiry_id', v_previous));
        -- The life-and-safety check runs at once; routing waits for the citizen to finish
        -- (a later fragment moves it back: see below).
        PERFORM procrastinate_defer_jobs_v1(ARRAY[
            ROW('routing', 'check_urgent', 0, NULL, NULL,
                jsonb_build_object('inquiry_id', v_inquiry_id, 'seq', 1),
                NULL)::procrastinate_job_to_defer_v1,
            ROW('routing', 'route_inquiry', 0, NULL, NULL,
                jsonb_build_object('inquiry_id', v_inquiry_id),
                p_now + p_quiet)::procrastinate_job_to_defer_v1]);
        -- The first outbound text carries the query code (查询码) of the answer page; a public
        -- comment gets no acknowledgement, so never the code.
        v_ack := CASE WHEN p_channel = 'private_message' THEN
                     replace(replace(p_ack_template, '{reference}', v_reference), '{code}', v_code)
                 END;
        UPDATE inbox_event SET inquiry_id = v_inquiry_id, ack_text = v_ack,
               reply_timestamp = CASE WHEN v_ack IS NOT NULL THEN p_reply_timestamp END,
               reply_nonce = CASE WHEN v_ack IS NOT NULL THEN p_reply_nonce END
         WHERE id = v_event_id;
        RETURN QUERY SELECT v_event_id, false, v_inquiry_id, v_reference, true, v_ack,
                            CASE WHEN v_ack IS NOT NULL THEN p_reply_timestamp END,
                            CASE WHEN v_ack IS NOT NULL THEN p_reply_nonce END;
        RETURN;
    END IF;

    -- After the answer (`replied`), a message is a follow-up the department should see.
    UPDATE inquiry SET message_count = message_count + 1,
                       last_message_at = GREATEST(last_message_at, p_now), updated_at = p_now,
                       follow_up_at = CASE WHEN status = 'replied' THEN p_now
                                           ELSE follow_up_at END
     WHERE id = v_inquiry_id
    RETURNING message_count, status = 'replied' INTO v_seq, v_replied;
    INSERT INTO inquiry_message (inquiry_id, seq, platform_msg_id, inbox_event_id, msg_type, content, sent_at)
    VALUES (v_inquiry_id, v_seq, p_platform_msg_id, v_event_id, p_msg_type, p_content, p_sent_at);
    IF p_media_id IS NOT NULL THEN
        INSERT INTO media (inquiry_id, inbox_event_id, seq, kind, platform_media_id, status,
                           created_at, updated_at)
        VALUES (v_inquiry_id, v_event_id, v_seq, p_msg_type, p_media_id, 'pending', p_now, p_now)
        RETURNING id INTO v_media;
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'routing', 'fetch_media', 0, NULL, NULL, jsonb_build_object('media_id', v_media),
            NULL)::procrastinate_job_to_defer_v1]);
    END IF;
    INSERT INTO inquiry_event (inquiry_id, at, actor, action, reason, details)
    VALUES (v_inquiry_id, p_now, 'system:intake', 'message_appended', '',
            jsonb_build_object('inbox_event_id', v_event_id, 'seq', v_seq));
    IF v_replied THEN
        INSERT INTO inquiry_event (inquiry_id, at, actor, action, reason, details)
        VALUES (v_inquiry_id, p_now, 'system:intake', 'followed_up',
                'the citizen wrote again after the answer',
                jsonb_build_object('inbox_event_id', v_event_id, 'seq', v_seq));
    END IF;
    PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
        'routing', 'check_urgent', 0, NULL, NULL,
        jsonb_build_object('inquiry_id', v_inquiry_id, 'seq', v_seq), NULL
    )::procrastinate_job_to_defer_v1]);
    -- Routing (or, once routed, the re-routing check) waits a quiet period after this fragment:
    -- a waiting job moves back (over ix_procrastinate_jobs_route_todo); without one, one is
    -- queued. No queueing lock: a job retried meanwhile only makes a second, harmless run
    -- (routing decides once, re-routing only on a change). An unrouted inquiry waits at most
    -- ten quiet periods after its first message, whatever the citizen keeps sending.
    UPDATE procrastinate_jobs j
       SET scheduled_at = CASE WHEN i.routed_at IS NULL
                               THEN LEAST(p_now + p_quiet, i.received_at + 10 * p_quiet)
                               ELSE p_now + p_quiet END
      FROM inquiry i
     WHERE i.id = v_inquiry_id
       AND j.task_name = 'route_inquiry' AND j.status = 'todo'
       AND j.args ->> 'inquiry_id' = v_inquiry_id::text;
    IF NOT FOUND THEN
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'routing', 'route_inquiry', 0, NULL, NULL,
            jsonb_build_object('inquiry_id', v_inquiry_id), p_now + p_quiet
        )::procrastinate_job_to_defer_v1]);
    END IF;
    UPDATE inbox_event SET inquiry_id = v_inquiry_id WHERE id = v_event_id;
    RETURN QUERY SELECT v_event_id, false, v_inquiry_id, v_reference, false,
                        NULL::text, NULL::text, NULL::text;
END
$fn$;
