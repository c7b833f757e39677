"""nginx on a full-NAT lab backend (scripts/lib/lab.py, topology fullnat): what a private backend
behind the balancer runs, Debian's nginx 1.22 with nothing but its own config.

Each backend's nginx has its own prefix under the lab's state directory (STATE/nginx-bN/: its
config, pid file, error log and temp directories) and two listeners, both dual-stack:
  PP_PORT     (8080) `listen ... proxy_protocol`: every connection must start with a PROXY header
              (nginx reads v1 and v2); logs to STATE/nginx-bN/pp.log
  PLAIN_PORT  (8081) no PROXY header expected (the negative control); logs to STATE/nginx-bN/plain.log
On both, GET / answers "backend=bN\\n" with an X-Backend header (as lab_server.py does, so
tests/e2e/lab_client.py reads it the same way), and GET /blob the 1 MiB of STATE/blob.bin
(lab_server.py's deterministic stream, so the same SHA-256 is expected).

One line per request, fields separated by spaces (LOG_FIELDS; "-" for an empty one):
  $proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr
  $proxy_protocol_server_port $remote_addr $remote_port $server_port $status $request_uri
"""
import os

PP_PORT, PLAIN_PORT = 8080, 8081
LOG_FIELDS = ("pp_addr", "pp_port", "pp_server_addr", "pp_server_port", "remote_addr", "remote_port",
              "server_port", "status", "uri")
BLOB_SIZE = 1 << 20


def blob_bytes(size=BLOB_SIZE):
    """lab_server.py's /blob stream: byte i is (i * 7 + 3) & 0xFF, repeating every 64 KiB."""
    chunk = bytes((i * 7 + 3) & 0xFF for i in range(65536))
    return (chunk * (size // len(chunk) + 1))[:size]


def prefix_dir(state_dir, name):
    return os.path.join(state_dir, f"nginx-{name}")


def log_path(state_dir, name, listener="pp"):
    """The access log of backend `name`'s listener "pp" (PP_PORT) or "plain" (PLAIN_PORT)."""
    return os.path.join(prefix_dir(state_dir, name), f"{listener}.log")


def config_text(state_dir, name):
    d = prefix_dir(state_dir, name)
    blob = os.path.join(state_dir, "blob.bin")
    fmt = " ".join("$" + v for v in ("proxy_protocol_addr", "proxy_protocol_port", "proxy_protocol_server_addr",
                                      "proxy_protocol_server_port", "remote_addr", "remote_port", "server_port",
                                      "status", "request_uri"))
    locations = f"""
        location = /blob {{
            alias {blob};
            default_type application/octet-stream;
            add_header X-Backend {name};
        }}
        location / {{
            default_type text/plain;
            add_header X-Backend {name};
            return 200 "backend={name}\\n";
        }}"""
    return f"""# nginx of lab backend {name} (scripts/lib/lab_nginx.py)
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 10000;
    log_format lab '{fmt}';
    server {{
        listen {PP_PORT} proxy_protocol;
        listen [::]:{PP_PORT} ipv6only=on proxy_protocol;
        access_log {d}/pp.log lab;{locations}
    }}
    server {{
        listen {PLAIN_PORT};
        listen [::]:{PLAIN_PORT} ipv6only=on;
        access_log {d}/plain.log lab;{locations}
    }}
}}
"""


def write_blob(state_dir):
    with open(os.path.join(state_dir, "blob.bin"), "wb") as f:
        f.write(blob_bytes())


def start_nginx(sh, state_dir, ns, name):
    """Writes backend `name`'s config and starts its nginx in namespace `ns` (it daemonises: the
    lab's `down` kills it with every other process of the namespace)."""
    d = prefix_dir(state_dir, name)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(config_text(state_dir, name))
    # -e: the error log before the config is read (Debian's default would be /var/log/nginx).
    sh("nginx", "-p", d + "/", "-c", conf, "-e", os.path.join(d, "error.log"), ns=ns)


def read_log(state_dir, name, listener="pp", start=0):
    """The log lines of backend `name`'s listener from byte `start`, each a dict of LOG_FIELDS."""
    try:
        with open(log_path(state_dir, name, listener), errors="replace") as f:
            f.seek(start)
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [dict(zip(LOG_FIELDS, line.split(" "))) for line in lines if line]


def log_size(state_dir, name, listener="pp"):
    try:
        return os.path.getsize(log_path(state_dir, name, listener))
    except FileNotFoundError:
        return 0
