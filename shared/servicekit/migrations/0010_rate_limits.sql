-- Fixed-window rate limit counters shared by every instance of a service
-- (shared/servicekit/limits.py). Old windows are deleted by forget_old().
CREATE TABLE rate_limits (
    scope          text    NOT NULL,
    key            text    NOT NULL,
    window_seconds integer NOT NULL,
    window_start   bigint  NOT NULL,
    hits           integer NOT NULL,
    PRIMARY KEY (scope, key, window_seconds, window_start)
);
