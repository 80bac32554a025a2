"""govinbox: one inbox for what citizens send government WeChat and Weibo accounts."""
