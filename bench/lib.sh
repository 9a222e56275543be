# Shared by the bench scripts (sourced, not run).

# The port a `chatstream serve --port 0` logged to LOG ("listening on
# http://127.0.0.1:PORT"), waiting up to 10 s; prints the log and fails if none.
port_from_log() { # LOG
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$1" >&2; return 1; }
  echo "$port"
}
