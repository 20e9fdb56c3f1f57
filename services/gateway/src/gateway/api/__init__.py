"""The gateway's routes: the proxy (`/api/<service>/...`) and the pages, split by feature:
proxy, web (shared page plumbing), session_pages, console, customer_pages."""
