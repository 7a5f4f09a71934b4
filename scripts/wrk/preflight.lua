-- wrk: a browser's CORS preflight for a JSON POST to /visit from https://site.example.
wrk.method = "OPTIONS"
wrk.headers["Origin"] = "https://site.example"
wrk.headers["Access-Control-Request-Method"] = "POST"
wrk.headers["Access-Control-Request-Headers"] = "content-type"
