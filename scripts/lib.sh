# shellcheck shell=bash
#
# Helpers shared by scripts/serve and scripts/test. Source it; don't run it.
# Safe under `set -euo pipefail`. Every function says what it does on stderr
# (lines start with `==> `) and stops the script with one `error: ...` line
# when it cannot do its job.
#
# Environment honoured:
#   PG_ADMIN_URL    a server to use (a superuser or CREATEDB role, database
#                   `postgres`); used as is when it answers.
#   PG_SKIP_SYSTEM  when 1, ignore the system server on 127.0.0.1:5432 (don't
#                   probe it, don't start it) and go straight to the project's
#                   own cluster; for testing that path on a machine that has
#                   a system server.
#   LOCAL_PG_PORT   port of the project's own cluster (default 5433).
#   LOCALSTRIPE_PORT  port of the fake Stripe server (default 8420).
#
# Environment exported:
#   PG_ADMIN_URL    by ensure_postgres.
#   STRIPE_API_BASE, LOCALSTRIPE_URL  by ensure_localstripe.
#   PATH            gains ~/.cargo/bin (where `cargo install` puts tools).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_PG_DIR="$REPO_ROOT/.local/pg"

CARGO_BIN_DIR="${CARGO_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cargo}/bin"
case ":$PATH:" in
*":$CARGO_BIN_DIR:"*) ;;
*) export PATH="$CARGO_BIN_DIR:$PATH" ;;
esac

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (not root and no sudo)"
    fi
}

# The newest PostgreSQL server bin dir (holding initdb), or nothing.
pg_bin_dir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then printf '%s\n' "$d"; fi
    done | sort -t/ -k4,4n | tail -n1
}

# psql that never prompts, never reads ~/.psqlrc and gives up quickly.
pg_psql() {
    local psql_bin
    psql_bin="$(command -v psql 2>/dev/null || true)"
    if [ -z "$psql_bin" ]; then
        local bin
        bin="$(pg_bin_dir)"
        [ -n "$bin" ] && [ -x "$bin/psql" ] && psql_bin="$bin/psql"
    fi
    [ -n "$psql_bin" ] || return 127
    PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}" "$psql_bin" -X -w -v ON_ERROR_STOP=1 "$@" </dev/null
}

# True when the URL answers `select 1`.
pg_answers() {
    pg_psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

# True when HOST:PORT answers as user postgres without a password.
pg_trust_answers() {
    pg_psql -h "$1" -p "$2" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

install_postgres_packages() {
    say "PostgreSQL server binaries not found: installing Debian's postgresql package"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is missing; install PostgreSQL or set PG_ADMIN_URL"
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        die "PostgreSQL is not installed; run 'apt-get install -y postgresql' as root (no sudo here) or set PG_ADMIN_URL"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2 ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 ||
        die "apt-get install -y postgresql failed"
    [ -n "$(pg_bin_dir)" ] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
}

# Starts the system cluster <ver>/main if it exists and is down. Best effort.
start_system_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 1
    local ver cluster status
    while read -r ver cluster _ status _; do
        [ "$cluster" = main ] || continue
        case "$status" in
        down*)
            say "system cluster $ver/main is down: starting it"
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || {
                say "could not start system cluster $ver/main"
                return 1
            }
            return 0
            ;;
        esac
    done < <(pg_lsclusters -h 2>/dev/null || true)
    return 1
}

# Runs a command as the owner of the project's cluster (postgres when root),
# from / so that an unreadable working directory doesn't matter.
as_pg_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Writes (or with -a appends) stdin to file $1 as the cluster's owner.
pg_owner_write() {
    local op='>'
    if [ "$1" = -a ]; then
        op='>>'
        shift
    fi
    # shellcheck disable=SC2016 # $1 expands in the inner sh
    as_pg_owner sh -c "cat $op"' "$1"' sh "$1"
}

# When root, makes sure the postgres user can reach $LOCAL_PG_DIR: it must be
# able to traverse every parent directory.
make_pg_dir_reachable() {
    local dir="" part
    local -a parts
    IFS=/ read -r -a parts <<<"${LOCAL_PG_DIR#/}"
    # From / down, so that each directory is judged once its parents are open.
    for part in "${parts[@]}"; do
        dir="$dir/$part"
        if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
            say "letting user postgres traverse $dir (chmod o+x)"
            chmod o+x "$dir" || die "cannot make $dir traversable for user postgres"
        fi
    done
}

# The project's own cluster under .local/pg, on 127.0.0.1:$LOCAL_PG_PORT.
ensure_local_cluster() {
    local port="${LOCAL_PG_PORT:-5433}"
    local bin data="$LOCAL_PG_DIR/data" run="$LOCAL_PG_DIR/run" log="$LOCAL_PG_DIR/postgres.log"
    bin="$(pg_bin_dir)"
    [ -n "$bin" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"

    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 ||
            die "running as root, but there is no 'postgres' user to run the project's cluster (install the postgresql package)"
        mkdir -p "$REPO_ROOT/.local"
        chmod 755 "$REPO_ROOT/.local"
        mkdir -p "$LOCAL_PG_DIR" "$run"
        chown postgres: "$LOCAL_PG_DIR" "$run"
        make_pg_dir_reachable
    else
        mkdir -p "$LOCAL_PG_DIR" "$run"
        if [ -e "$data" ] && [ ! -O "$data" ]; then
            die "$data belongs to another user; run as that user (or root), or remove it"
        fi
    fi

    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating the project's PostgreSQL cluster in $data ($("$bin/postgres" --version))"
        as_pg_owner "$bin/initdb" -D "$data" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C.UTF-8 >"$LOCAL_PG_DIR/initdb.log" 2>&1 ||
            die "initdb failed; see $LOCAL_PG_DIR/initdb.log"
        # Settings that may change between runs live in project.conf, which is
        # rewritten at every start.
        echo "include_if_exists = 'project.conf'" |
            pg_owner_write -a "$data/postgresql.conf"
    fi

    # trust for local sockets and 127.0.0.1 / ::1 (initdb --auth=trust wrote
    # the same; kept explicit so an old cluster is fixed up too).
    pg_owner_write "$data/pg_hba.conf" <<'EOF'
# Written by scripts/lib.sh: the project's throwaway development cluster.
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
EOF
    pg_owner_write "$data/project.conf" <<EOF
# Written by scripts/lib.sh at every start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run'
max_connections = 200
EOF

    if as_pg_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        if pg_trust_answers 127.0.0.1 "$port"; then
            say "the project's PostgreSQL cluster is running on 127.0.0.1:$port"
        else
            say "restarting the project's PostgreSQL cluster to listen on 127.0.0.1:$port"
            as_pg_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 restart >&2 ||
                die "the project's PostgreSQL cluster did not restart; see $log"
        fi
    else
        say "starting the project's PostgreSQL cluster on 127.0.0.1:$port (log: $log)"
        as_pg_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >&2 ||
            die "the project's PostgreSQL cluster did not start (port $port taken? set LOCAL_PG_PORT); see $log"
    fi

    pg_trust_answers 127.0.0.1 "$port" ||
        die "the project's PostgreSQL cluster does not answer on 127.0.0.1:$port; see $log"
    export PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# Makes a PostgreSQL server reachable and exports PG_ADMIN_URL.
ensure_postgres() {
    # (a) the caller's server
    if [ -n "${PG_ADMIN_URL:-}" ]; then
        if pg_answers "$PG_ADMIN_URL"; then
            say "using PostgreSQL at PG_ADMIN_URL"
            export PG_ADMIN_URL
            return 0
        fi
        say "PG_ADMIN_URL is set but does not answer; looking for another server"
    fi

    # (b) the system server with trust auth
    if [ "${PG_SKIP_SYSTEM:-0}" != 1 ] && pg_trust_answers 127.0.0.1 5432; then
        say "using the PostgreSQL server on 127.0.0.1:5432"
        export PG_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
        return 0
    fi

    # (c) the server binaries, from the system's packages if missing
    if [ -z "$(pg_bin_dir)" ]; then
        install_postgres_packages
    fi
    if [ "${PG_SKIP_SYSTEM:-0}" != 1 ] && start_system_cluster &&
        pg_trust_answers 127.0.0.1 5432; then
        say "using the PostgreSQL server on 127.0.0.1:5432"
        export PG_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
        return 0
    fi

    # (d) a cluster of the project's own
    say "no usable PostgreSQL server: using the project's own cluster in .local/pg"
    ensure_local_cluster
}

# PG_ADMIN_URL with its database replaced by $1.
database_url() {
    local name="$1" base query="" scheme rest authority
    [ -n "${PG_ADMIN_URL:-}" ] || die "PG_ADMIN_URL is not set (call ensure_postgres first)"
    base="${PG_ADMIN_URL%%\?*}"
    [ "$base" != "$PG_ADMIN_URL" ] && query="?${PG_ADMIN_URL#*\?}"
    scheme="${base%%://*}"
    rest="${base#*://}"
    authority="${rest%%/*}"
    printf '%s://%s/%s%s\n' "$scheme" "$authority" "$name" "$query"
}

check_db_name() {
    [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name '$1'"
}

# Creates database $1 if missing; prints its URL on stdout.
ensure_database() {
    local name="${1:-}" exists
    check_db_name "$name"
    exists="$(pg_psql "$PG_ADMIN_URL" -Atqc "select 1 from pg_database where datname = '$name'")" ||
        die "cannot query databases at the PostgreSQL server"
    if [ "$exists" = 1 ]; then
        say "database $name exists"
    else
        say "creating database $name"
        pg_psql "$PG_ADMIN_URL" -qc "create database \"$name\"" >&2 ||
            die "cannot create database $name"
    fi
    database_url "$name"
}

# Drops database $1 (closing its connections) and creates it empty; prints its URL.
reset_database() {
    local name="${1:-}"
    check_db_name "$name"
    say "dropping database $name (if it exists)"
    pg_psql "$PG_ADMIN_URL" -qc 'set client_min_messages = warning' \
        -c "drop database if exists \"$name\" with (force)" >&2 ||
        die "cannot drop database $name"
    ensure_database "$name"
}

ensure_sqlx_cli() {
    local v
    v="$(cargo sqlx --version 2>/dev/null || true)"
    if [[ "$v" =~ [[:space:]]0\.9\. ]]; then
        say "sqlx-cli: $v"
        return 0
    fi
    say "installing sqlx-cli 0.9 (cargo install; takes a couple of minutes)"
    cargo install sqlx-cli --version '^0.9' --no-default-features \
        --features postgres,rustls --locked ||
        die "could not install sqlx-cli 0.9"
    v="$(cargo sqlx --version 2>/dev/null || true)"
    [[ "$v" =~ [[:space:]]0\.9\. ]] || die "sqlx-cli installed but 'cargo sqlx --version' says '$v'"
    say "sqlx-cli: $v"
}

ensure_nextest() {
    local v
    # A machine may carry it in /usr/local/bin while a bare PATH misses it.
    case ":$PATH:" in
    *:/usr/local/bin:*) ;;
    *) [ -x /usr/local/bin/cargo-nextest ] && export PATH="$PATH:/usr/local/bin" ;;
    esac
    if v="$(cargo nextest --version 2>/dev/null | head -n1)" && [ -n "$v" ]; then
        say "$v"
        return 0
    fi
    say "installing cargo-nextest (cargo install; takes several minutes)"
    cargo install cargo-nextest --locked || die "could not install cargo-nextest"
    v="$(cargo nextest --version 2>/dev/null | head -n1)" ||
        die "cargo-nextest installed but 'cargo nextest --version' fails"
    say "$v"
}

# localstripe, the fake Stripe server the tests talk to: run by
# scripts/localstripe_launcher.py (which patches it for async-stripe 1.0)
# from a virtualenv in .venv, on 127.0.0.1:$LOCALSTRIPE_PORT (default 8420).
# Reuses a launcher already answering there; restarts it when its source or
# the requirements changed and it is this checkout's (its pid is the one in
# .local/localstripe.pid, or it runs this checkout's launcher file); refuses a
# port held by anything else.
# State is in memory only: a new launcher starts empty.
#
# Environment honoured: LOCALSTRIPE_PORT.
# Environment exported: STRIPE_API_BASE (http://127.0.0.1:PORT/, with the
# trailing slash async-stripe needs) and LOCALSTRIPE_URL (no slash).
LOCALSTRIPE_VENV="$REPO_ROOT/.venv"
LOCALSTRIPE_REQUIREMENTS="$REPO_ROOT/scripts/localstripe-requirements.txt"
LOCALSTRIPE_LAUNCHER="$REPO_ROOT/scripts/localstripe_launcher.py"
LOCALSTRIPE_LOG="$REPO_ROOT/.local/localstripe.log"
LOCALSTRIPE_PID_FILE="$REPO_ROOT/.local/localstripe.pid"

# Makes .venv (python3 -m venv; Debian's python3-venv when missing) and
# installs the requirements when their sha256 differs from the stamp.
# Sets LOCALSTRIPE_REINSTALLED=1 when it installed them.
ensure_localstripe_venv() {
    local py="$LOCALSTRIPE_VENV/bin/python" stamp="$LOCALSTRIPE_VENV/.localstripe-stamp" sum
    LOCALSTRIPE_REINSTALLED=0
    [ -f "$LOCALSTRIPE_REQUIREMENTS" ] || die "missing $LOCALSTRIPE_REQUIREMENTS"
    if [ -e "$LOCALSTRIPE_VENV" ] && ! "$py" -c 'import sys' >/dev/null 2>&1; then
        say "$LOCALSTRIPE_VENV is not a working virtualenv: recreating it"
        rm -rf "$LOCALSTRIPE_VENV"
    fi
    if [ ! -e "$LOCALSTRIPE_VENV" ]; then
        command -v python3 >/dev/null 2>&1 || die "python3 is missing (needed for localstripe); install Debian's python3-venv"
        if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
            say "python3 cannot make virtualenvs: installing Debian's python3-venv"
            command -v apt-get >/dev/null 2>&1 || die "python3 has no venv/ensurepip and apt-get is missing; install python3-venv"
            if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
                die "python3 has no venv/ensurepip; run 'apt-get install -y python3-venv' as root (no sudo here)"
            fi
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2 ||
                die "apt-get update failed"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv >&2 ||
                die "apt-get install -y python3-venv failed"
        fi
        say "creating the virtualenv $LOCALSTRIPE_VENV ($(python3 --version 2>&1))"
        python3 -m venv "$LOCALSTRIPE_VENV" >&2 || {
            rm -rf "$LOCALSTRIPE_VENV"
            die "python3 -m venv $LOCALSTRIPE_VENV failed (Debian: apt-get install -y python3-venv)"
        }
    fi
    sum="$(sha256sum "$LOCALSTRIPE_REQUIREMENTS" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$sum" ]; then
        say "installing localstripe into $LOCALSTRIPE_VENV ($(basename "$LOCALSTRIPE_REQUIREMENTS"))"
        rm -f "$stamp"
        PIP_NO_INPUT=1 "$py" -m pip install --quiet --disable-pip-version-check \
            -r "$LOCALSTRIPE_REQUIREMENTS" >&2 ||
            die "pip install -r $LOCALSTRIPE_REQUIREMENTS failed (into $LOCALSTRIPE_VENV)"
        printf '%s\n' "$sum" >"$stamp"
        LOCALSTRIPE_REINSTALLED=1
    fi
}

# Asks http://127.0.0.1:$1 who it is; with $2 (seconds) and $3 (a pid), waits
# until the launcher answers, $3 is gone or the time is up (meanwhile, a
# refused or failed connection is taken as "still starting"). Prints one line:
# `ours SHA256 PID` (this launcher, its source's hash), `other` (something
# else answers) or `none` (nothing listens).
localstripe_probe() {
    "$LOCALSTRIPE_VENV/bin/python" - "$@" <<'PY'
import json, os, socket, sys, time, urllib.error, urllib.request
port, wait, pid = int(sys.argv[1]), float(sys.argv[2] if len(sys.argv) > 2 else 0), (sys.argv[3] if len(sys.argv) > 3 else "")
deadline = time.time() + wait
def probe():
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/_config/launcher" % port, timeout=2) as r:
            info = json.loads(r.read())
        if info.get("launcher") == "contest-backend localstripe_launcher":
            return "ours %s %s" % (info.get("source_sha256"), info.get("pid"))
        return "other"
    except urllib.error.HTTPError:
        return "other"
    except (ConnectionRefusedError, socket.timeout, TimeoutError) as e:
        return "none" if isinstance(e, ConnectionRefusedError) else "other"
    except urllib.error.URLError as e:
        return "none" if isinstance(e.reason, ConnectionRefusedError) else "other"
    except ValueError:
        return "other"
while True:
    state = probe()
    if state.startswith("ours") or time.time() >= deadline:
        break
    if pid:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            # Gone: maybe another launcher took the port first (two runs
            # starting at once); give it a moment to answer.
            pid, deadline = "", min(deadline, time.time() + 3)
        except PermissionError:
            pass
    time.sleep(0.1)
print(state)
PY
}

ensure_localstripe() {
    local port="${LOCALSTRIPE_PORT:-8420}" state sha pid old_pid source_sha
    if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
        die "LOCALSTRIPE_PORT must be a port number, 1 to 65535 (got '$port')"
    fi
    ensure_localstripe_venv
    source_sha="$(sha256sum "$LOCALSTRIPE_LAUNCHER" | cut -d' ' -f1)"
    mkdir -p "$REPO_ROOT/.local"

    state="$(localstripe_probe "$port")"
    case "$state" in
    ours\ *)
        read -r _ sha pid <<<"$state"
        old_pid="$(cat "$LOCALSTRIPE_PID_FILE" 2>/dev/null || echo none)"
        if [ "$sha" = "$source_sha" ] && [ "$LOCALSTRIPE_REINSTALLED" != 1 ]; then
            say "localstripe is running on 127.0.0.1:$port (pid $pid)"
        elif [ "$pid" = "$old_pid" ] ||
            tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF " $LOCALSTRIPE_LAUNCHER "; then
            say "localstripe on 127.0.0.1:$port (pid $pid) runs an older launcher or requirements: restarting it"
            kill "$pid" 2>/dev/null || true
            local _
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && die "localstripe (pid $pid) did not stop; stop it and retry"
            state=none
        else
            say "reusing the localstripe launcher on 127.0.0.1:$port (pid $pid), started from another copy of the launcher"
        fi
        ;;
    other)
        die "something that is not this project's localstripe launcher answers on port $port; stop it or set LOCALSTRIPE_PORT"
        ;;
    esac

    if [ "$state" = none ]; then
        say "starting localstripe on 127.0.0.1:$port (log: $LOCALSTRIPE_LOG)"
        local -a detach=()
        # Appended to (two runs may start at once), kept under ~5 MB.
        if [ "$(stat -c %s "$LOCALSTRIPE_LOG" 2>/dev/null || echo 0)" -gt 5000000 ]; then
            mv -f "$LOCALSTRIPE_LOG" "$LOCALSTRIPE_LOG.old"
        fi
        printf '==== %s: starting the launcher on port %s\n' "$(date '+%F %T')" "$port" >>"$LOCALSTRIPE_LOG"
        # Detached (own session), so that a Ctrl-C in the caller's terminal
        # doesn't stop it: later runs reuse it. `setsid -w` stays as long as
        # the launcher, so that $! tells whether it is still alive.
        command -v setsid >/dev/null 2>&1 && detach=(setsid -w)
        "${detach[@]}" nohup "$LOCALSTRIPE_VENV/bin/python" "$LOCALSTRIPE_LAUNCHER" \
            --port "$port" --from-scratch --no-persist --webhook-delay 0.2 \
            >>"$LOCALSTRIPE_LOG" 2>&1 </dev/null &
        pid=$!
        state="$(localstripe_probe "$port" 20 "$pid")"
        case "$state" in
        ours\ *)
            read -r _ sha pid <<<"$state"
            printf '%s\n' "$pid" >"$LOCALSTRIPE_PID_FILE"
            say "localstripe is running on 127.0.0.1:$port (pid $pid)"
            ;;
        other)
            die "something that is not this project's localstripe launcher answers on port $port; stop it or set LOCALSTRIPE_PORT (see $LOCALSTRIPE_LOG)"
            ;;
        *)
            if kill -0 "$pid" 2>/dev/null; then
                die "localstripe (pid $pid) does not answer on 127.0.0.1:$port after 20 s; see $LOCALSTRIPE_LOG"
            fi
            tail -n 10 "$LOCALSTRIPE_LOG" >&2 2>/dev/null || true
            die "localstripe did not start on 127.0.0.1:$port; see $LOCALSTRIPE_LOG"
            ;;
        esac
    fi

    export STRIPE_API_BASE="http://127.0.0.1:$port/"
    export LOCALSTRIPE_URL="http://127.0.0.1:$port"
}
