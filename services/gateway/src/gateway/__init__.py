"""The gateway: the one public entry point (`/api/<service>/...`) and the web pages."""
