"""All SQL of the enrollment service, by topic. Functions take a connection and never commit.

``programs``: programs, questions, reference data, staff authorization, the
staff and customers known from identity's events, audit. ``enrollments``:
enrollments, applications, history, idempotency. ``returning_citizens``: the
Add Customer records and their list.
"""
