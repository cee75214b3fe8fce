# Shared by the wrk benchmarks (http.sh, php.sh); sourced, not run. It
# starts servers as children of the calling script (killed on exit), waits
# until they answer, runs wrk in interleaved rounds and prints the table.
# A server is a target "name:port"; its runs go to runs[name], a line per
# round: "req/s p50 p99 round rss cpu mean errors" (rss "-" unless
# measure_rss=1; mean: wrk's mean latency).
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rounds=${ROUNDS:-3}
measure_rss=0
wrk_script=""
tmp=""
pids=()
declare -A runs=()
declare -A roots=() # name -> the pids whose process trees are that server

die() { echo "$*" >&2; exit 1; }

# need COMMAND PACKAGE: exit, naming the Debian package, when COMMAND is missing.
need() { command -v "$1" >/dev/null || die "$1 not installed (apt-get install $2)"; }

# Debian names php-fpm after its version (/usr/sbin/php-fpm8.2).
find_fpm() { command -v php-fpm || ls /usr/sbin/php-fpm* 2>/dev/null | head -1 || true; }

# start_tmp PREFIX: the temp dir for configs, sockets and logs; everything
# started below is killed and the dir removed when the script exits.
start_tmp() {
  tmp=$(mktemp -d "/tmp/$1.XXXX")
  trap cleanup EXIT
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

# A server left over on a port would be measured in place of ours.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || die "port $1 is in use"; }

# start_drover NAME PORT LAUNCH CMD...: drover with 2 workers running CMD
# (LAUNCH: the worker's launch mode, "" for the default), HTTP on PORT.
# DROVER names the drover binary (default bin/drover): an older build in
# another folder is measured side by side with this one that way.
# DROVER_EXTRA is YAML appended to its config (e.g. an admin listener).
start_drover() {
  local name=$1 port=$2 launch=$3 cmd
  shift 3
  port_free "$port"
  cmd=$(printf ', %s' "$@")
  cat > "$tmp/drover-$port.yaml" <<YAML
worker_num: 2
worker:
  cmd: [${cmd:2}]
${launch:+  launch: $launch}
${DROVER_WORKER_ENV:+  env: {$DROVER_WORKER_ENV\}}
listeners:
  - address: tcp://127.0.0.1:$port
    protocol: http
${DROVER_EXTRA:-}
YAML
  XDG_RUNTIME_DIR=$tmp DROVER_RUNTIME_DIR=$tmp/drover "${DROVER:-bin/drover}" start -c "$tmp/drover-$port.yaml" 2>"$tmp/drover-$port.log" & pids+=($!)
  roots[$name]=$!
}

# start_fpm NAME PORT SCRIPT: nginx (2 worker processes) on PORT passing
# every request to SCRIPT in php-fpm (pm static, 2 children), both as the
# current user; php-fpm reads Debian's fpm php.ini and conf.d (opcache on).
start_fpm() {
  local name=$1 port=$2 script=$3 d=$tmp/fpm-$2 root_flag=""
  port_free "$port"
  mkdir -p "$d"
  cat > "$d/fpm.conf" <<FPM
[global]
error_log = $d/fpm.log
daemonize = no
[www]
listen = $d/fpm.sock
pm = static
pm.max_children = 2
FPM
  # SCRIPT_NAME as a front controller sees it behind try_files (Slim takes
  # its base path from it).
  cat > "$d/nginx.conf" <<NGX
worker_processes 2;
pid $d/nginx.pid;
error_log $d/nginx.err;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d; fastcgi_temp_path $d; proxy_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;
  server {
    listen 127.0.0.1:$port;
    root $(dirname "$script");
    location / {
      fastcgi_pass unix:$d/fpm.sock;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $script;
      fastcgi_param SCRIPT_NAME /$(basename "$script");
    }
  }
}
NGX
  [ "$(id -u)" = 0 ] && root_flag="-R"
  # shellcheck disable=SC2086 # FPM_FLAGS: php -d options, split on spaces
  "$fpm" $root_flag ${FPM_FLAGS:-} -y "$d/fpm.conf" & pids+=($!)
  roots[$name]=$!
  nginx -c "$d/nginx.conf" -g "user $(id -un);" & pids+=($!)
  roots[$name]+=" $!"
}

# start_gunicorn NAME PORT / start_uwsgi NAME PORT: the WSGI hello world
# (scripts/bench/wsgi/hello.py) with 2 worker processes, each server as it
# is usually run alone: gunicorn's default sync workers (each answer closes
# its connection, as gunicorn's sync worker always does), and uWSGI behind
# its own HTTP router, which keeps client connections alive.
start_gunicorn() {
  port_free "$2"
  gunicorn -w 2 -b "127.0.0.1:$2" --chdir scripts/bench/wsgi --log-level warning hello:app \
    2>"$tmp/gunicorn-$2.log" & pids+=($!)
  roots[$1]=$!
}
start_uwsgi() {
  port_free "$2"
  uwsgi --plugin http,python3 --http "127.0.0.1:$2" --http-keepalive --master --processes 2 \
    --wsgi-file scripts/bench/wsgi/hello.py --callable app --disable-logging --die-on-term \
    >"$tmp/uwsgi-$2.log" 2>&1 & pids+=($!)
  roots[$1]=$!
}

# wait_http URL [BODY]: until URL answers 2xx (with BODY, if given); 1 after 10 s.
wait_http() {
  local body
  for _ in $(seq 100); do
    body=$(curl -sf "$1" 2>/dev/null) && { [ -z "${2-}" ] || [ "$body" = "$2" ]; } && return 0
    sleep 0.1
  done
  return 1
}

# The process trees of the given pids, and their RSS summed in MiB.
descendants() { local p; for p; do echo "$p"; descendants $(pgrep -P "$p" || true); done; }
rss_mib() { ps -o rss= -p "$(descendants "$@" | paste -sd,)" | awk '{s += $1} END {printf "%.1f", s / 1024}'; }

# cpu_us PID...: the user and system CPU time used so far by the process
# trees of the given pids, in microseconds (from /proc/PID/stat).
clk_tck=$(getconf CLK_TCK)
cpu_us() {
  local p t=0 f
  for p in $(descendants "$@"); do
    f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
    t=$(( t + $(awk '{print $12 + $13}' <<<"$f") ))
  done
  echo $(( t * 1000000 / clk_tck ))
}

machine() { echo "$(date -u +%FT%TZ) $(nproc) cores, $(go env GOVERSION)"; }

columns() {
  if [ "$measure_rss" = 1 ]; then
    printf "%-16s %6s %12s %10s %10s %8s %12s   %s\n" server conns "req/s" p50 p99 "RSS MiB" "req/s ratio" "ratio per round"
  else
    printf "%-16s %6s %12s %10s %10s %9s %12s   %s\n" server conns "req/s" p50 p99 "CPU µs/r" "req/s ratio" "ratio per round"
  fi
}

# measure CONNS PATH TARGET...: $rounds wrk runs of each target, the
# targets taking turns within a round (with wrk's -s $wrk_script when set:
# a Lua script that makes the request, e.g. a POST with a body). On a shared 2-core VM one 10 s run of
# the same server varies by ±10 %, more than the effects measured.
measure() {
  local c=$1 path=$2 t name out r p50 p99 errs rss round c0 n cpu mean
  shift 2
  runs=()
  for round in $(seq "$rounds"); do
    for t in "$@"; do
      name=${t%%:*}
      c0=$(cpu_us ${roots[$name]:-})
      out=$(wrk -t1 -c"$c" -d"$dur" --latency ${wrk_script:+-s "$wrk_script"} "http://127.0.0.1:${t#*:}$path")
      r=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
      p50=$(awk '$1=="50%"{print $2}' <<<"$out")
      p99=$(awk '$1=="99%"{print $2}' <<<"$out")
      mean=$(awk '$1=="Latency"{print $2; exit}' <<<"$out")
      errs=$(awk '/Non-2xx|Socket errors/{printf "%s; ", $0}' <<<"$out")
      # CPU per request of the server's whole process tree (the measure
      # least moved by what else the machine does); - when its pid is unknown.
      n=$(awk '/requests in/{print $1}' <<<"$out")
      cpu=-; [ -n "${roots[$name]:-}" ] && [ "${n:-0}" -gt 0 ] && cpu=$(awk -v d=$(( $(cpu_us ${roots[$name]}) - c0 )) -v n="$n" 'BEGIN{printf "%.1f", d/n}')
      # Right after the run, before a worker pool shrinks or a cache drops.
      rss=-; [ "$measure_rss" = 1 ] && rss=$(rss_mib ${roots[$name]})
      runs[$name]+="$r $p50 $p99 $round $rss $cpu $mean ${errs// /_}"$'\n'
    done
  done
}

# The median run of a target by req/s (rounds is odd; with an even count,
# the upper one).
median() { sort -n -k1,1 <<<"${runs[$1]}" | sed '/^$/d' | sed -n "$(( (rounds + 2) / 2 ))p"; }

# report CONNS BASE TARGET...: a row per target, its median run, the ratio
# of its req/s to BASE's median and, per round, to BASE's run in that round.
report() {
  local c=$1 base=$2 t name r rr p50 p99 round rss cpu errs ratio per base_med
  local -A base_round=()
  shift 2
  while read -r r _ _ round _; do [ -n "$round" ] && base_round[$round]=$r; done <<<"${runs[$base]}"
  read -r base_med _ < <(median "$base")
  for t in "$@"; do
    name=${t%%:*}
    read -r r p50 p99 _ rss cpu _ errs < <(median "$name")
    ratio=$(awk -v a="$r" -v b="$base_med" 'BEGIN{printf "%.2f", a/b}')
    per=""
    while read -r rr _ _ round _; do
      [ -n "$rr" ] && per+="$(awk -v a="$rr" -v b="${base_round[$round]}" 'BEGIN{printf "%.2f", a/b}') "
    done <<<"${runs[$name]}"
    if [ "$measure_rss" = 1 ]; then
      printf "%-16s %6d %12s %10s %10s %8s %12s   %s%s\n" "$name" "$c" "$r" "$p50" "$p99" "$rss" "$ratio" "$per" "${errs//_/ }"
    else
      printf "%-16s %6d %12s %10s %10s %9s %12s   %s%s\n" "$name" "$c" "$r" "$p50" "$p99" "$cpu" "$ratio" "$per" "${errs//_/ }"
    fi
  done
}

# tail_ratio CONNS TARGET...: a line per target, from its median run: the
# mean latency, the p99 and how many times the mean the p99 is (a request
# that waits for a worker should wait about as long as those before it).
tail_ratio() {
  local c=$1 t
  shift
  for t in "$@"; do
    # Every round's mean and p99 (the 7th and 3rd fields of its run), then
    # the median of the rounds' ratios: one disturbed round moves it less
    # than it moves the median run's.
    awk -v n="${t%%:*}" -v c="$c" 'function ms(v) {
        if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v + 0 }
      NF >= 7 { r[++k] = ms($3) / ms($7); rounds = rounds sprintf(" %.1f", r[k]); means = means (k > 1 ? ", " : "") $7 " " $3 }
      END {
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (r[j] < r[i]) { x = r[i]; r[i] = r[j]; r[j] = x }
        printf "%-16s %6d   p99/mean %5.1f (median of rounds:%s; mean, p99 of each: %s)\n", n, c, r[int((k + 1) / 2)], rounds, means }' <<<"${runs[${t%%:*}]}"
  done
}
