-- wrk: POST with no body to the URL's path (e.g. /visit/home, /incr/home).
wrk.method = "POST"
