# The WSGI hello world behind gunicorn and uWSGI in scripts/bench/http.sh:
# the same answer as examples/hello's GET /.
BODY = b"Hello, World!"


def app(environ, start_response):
    start_response("200 OK", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(BODY))),
    ])
    return [BODY]
