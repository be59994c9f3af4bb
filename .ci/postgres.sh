#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries are on this machine, for the tests that start a real server
# (tests/pg.py: initdb into a temporary directory, one server per pytest session, stopped at its end).
#
# Debian installs initdb, pg_ctl and postgres under /usr/lib/postgresql/<version>/bin, which is not on PATH;
# tests/pg.py looks there (or in $HFT_PG_BINDIR). Nothing is installed when the binaries are already there, so
# running this twice is cheap. It only installs: it never starts a server. The Python driver (psycopg 3) comes
# with the project's `dev` extra.
#
# Prints the directory of the binaries it found or installed.
set -euo pipefail

find_bindir() {
    if [[ -n "${HFT_PG_BINDIR:-}" && -x "${HFT_PG_BINDIR}/initdb" && -x "${HFT_PG_BINDIR}/pg_ctl" ]]; then
        echo "$HFT_PG_BINDIR"
        return 0
    fi
    local dir
    # the newest version first
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    return 1
}

if bindir=$(find_bindir); then
    echo "postgres.sh: found $("$bindir/postgres" --version) in $bindir"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "postgres.sh: the PostgreSQL server is not installed and installing it needs root" \
         "(apt-get install postgresql); the tests that need a server will be skipped" >&2
    exit 0
fi

echo "postgres.sh: installing Debian's postgresql package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null

# Debian's package creates a "main" cluster and starts it where services may start; the tests start their own
# server, so the one this install may have started is stopped (clusters that were there before are not touched:
# this branch runs only when PostgreSQL was not installed).
if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
        if [[ "$status" == online* ]]; then
            pg_ctlcluster "$version" "$cluster" stop || true
        fi
    done
fi

bindir=$(find_bindir) || { echo "postgres.sh: installed postgresql but found no initdb/pg_ctl" >&2; exit 1; }
echo "postgres.sh: installed $("$bindir/postgres" --version) in $bindir"
