# shellcheck shell=bash
# Shared by lab/up, lab/down, lab/status and lab/env. Sourcing it starts nothing
# and needs no root.

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${KURYR_LAB_DIR:-/var/lib/kuryr-lab}
ETC=$LAB/etc
DATA=$LAB/data
LOG=$LAB/log
RUN=$LAB/run

SYS_PY=/usr/bin/python3          # never the pyenv shim: keystoneclient lives here
AUTH_URL=http://127.0.0.1:5000/v3
# A host name for Keystone, in /etc/hosts (lab/up adds it): the static
# kuryr binary and the managed plugin resolve it without NSS modules.
KEYSTONE_NAME=keystone.kuryr-lab
AUTH_URL_BY_NAME=http://$KEYSTONE_NAME:5000/v3
NEUTRON_URL=http://127.0.0.1:9696
DOCKER_SOCK=/run/docker.sock
OVS_RUN=/run/openvswitch
REGION=RegionOne
LAB_HOST=$(hostname)

# Every service in the order lab/up starts them: lab/status prints them so,
# lab/down stops them in reverse (newest first).
ALL_SERVICES=(mariadb epmd rabbitmq ovsdb-server ovs-vswitchd dockerd keystone
              neutron-server ovs-agent lb-agent)

# The lab's dockerd: no bridge, no NAT, no iptables, so test containers
# have no way out (lab/up starts it, lab/dockerd restarts it).
DOCKERD_CMD=(/usr/sbin/dockerd --host "unix://$DOCKER_SOCK" --data-root /var/lib/docker
             --pidfile /run/docker.pid
             --iptables=false --ip6tables=false --bridge=none --ip-masq=false)

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: ERROR: %s\n' "$*" >&2; exit 1; }

# Seconds since $1 (an $EPOCHREALTIME value), one decimal.
elapsed() {
    local us=$(( ${EPOCHREALTIME/./} - ${1/./} ))
    printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# Account names are fixed; passwords have fixed defaults. Precedence:
#   lab/up:  environment > what the last lab/up recorded > default
#   lab/env: what the last lab/up recorded > environment > default
# so lab/env always prints what the running lab really uses.
load_accounts() {
    local prefer_recorded=${1:-no} v name
    local -A def=(
        [ADMIN]=kuryr-lab-admin [KURYR]=kuryr-lab-pass [DEMO]=kuryr-lab-demo
        [NEUTRON]=kuryr-lab-neutron [DB]=kuryr-lab-db
    )
    local -A rec=()
    if [[ -r $ETC/accounts.env ]]; then
        while IFS='=' read -r name v; do
            [[ $name == KURYR_LAB_*_PASSWORD ]] && rec[$name]=$v
        done <"$ETC/accounts.env"
    fi
    for v in "${!def[@]}"; do
        name=KURYR_LAB_${v}_PASSWORD
        if [[ $prefer_recorded == yes && -n ${rec[$name]:-} ]]; then
            printf -v "$name" '%s' "${rec[$name]}"
        elif [[ -n ${!name:-} ]]; then
            printf -v "$name" '%s' "${!name}"
        else
            printf -v "$name" '%s' "${rec[$name]:-${def[$v]}}"
        fi
    done
    KURYR_LAB_ADMIN_USERNAME=admin;   KURYR_LAB_ADMIN_PROJECT=admin
    KURYR_LAB_KURYR_USERNAME=kuryr;   KURYR_LAB_KURYR_PROJECT=service
    KURYR_LAB_DEMO_USERNAME=demo;     KURYR_LAB_DEMO_PROJECT=demo
    KURYR_LAB_NEUTRON_USERNAME=neutron
}

# --- process records -------------------------------------------------------
# run/NAME.pid holds "PID STARTTIME UTC-START": STARTTIME is field 22 of
# /proc/PID/stat, so a recycled PID is never mistaken for our daemon.

proc_starttime() {
    local s f
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra f <<<"${s##*) }"     # fields after "pid (comm) ", state first
    [[ ${f[0]} != Z ]] || return 1  # a zombie waiting for PID 1 is gone
    echo "${f[19]}"
}

# Prints the PID of a running lab service, fails if it is not running.
svc_pid() {
    local rec=$RUN/$1.pid pid st rest
    [[ -r $rec ]] || return 1
    read -r pid st rest <"$rec" || return 1
    [[ -n $pid && $(proc_starttime "$pid" 2>/dev/null) == "$st" ]] || return 1
    echo "$pid"
}

svc_started_utc() { local p s t; read -r p s t <"$RUN/$1.pid" && echo "$t"; }

# start_daemon NAME CMD...: runs CMD in its own session (PID = PGID), output
# to log/NAME.out, and records it. Only fds 0-2 are passed on (the lock fd is
# closed) so nothing holds our terminal or lock.
# `detached CMD... &`: replace the background subshell with CMD in a new
# session, holding no descriptor of its starter but stdin, stdout and
# stderr (a lock a caller holds - flock(1) passes its fd to the command it
# runs - must not live on in a daemon). Only ever with `&`: it execs.
detached() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@"
}

start_daemon() {
    local name=$1 pid st; shift
    # The command as started, for lab/restart: a daemon may rewrite its
    # /proc cmdline (oslo's setproctitle joins it into one string).
    printf '%s\0' "$@" >"$RUN/$name.cmd"
    detached "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    pid=$!
    st=$(proc_starttime "$pid") || die "$name exited at once, see $LOG/$name.out"
    echo "$pid $st $(date -u '+%F %T')" >"$RUN/$name.pid"
}

# "PID STARTTIME" for every process of a daemon: its process group (which
# keeps privsep helpers even after they are re-parented) plus all its
# descendants (some, like Erlang's erl_child_setup or dockerd's containerd,
# call setsid and leave the group).
daemon_procs() {
    local root=$1 p pp
    local -A kids=() seen=()
    while read -r p pp; do kids[$pp]+=" $p"; done < <(ps -e -o pid=,ppid=)
    local queue=("$root")
    # shellcheck disable=SC2207
    queue+=($(pgrep -g "$root" 2>/dev/null || true))
    while ((${#queue[@]})); do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        [[ -n ${seen[$p]:-} ]] && continue
        seen[$p]=1
        # shellcheck disable=SC2206
        queue+=(${kids[$p]:-})
    done
    for p in "${!seen[@]}"; do
        pp=$(proc_starttime "$p" 2>/dev/null) && echo "$p $pp"
    done
}

# Which of the recorded "PID STARTTIME" lines are still the same processes.
still_alive() {
    local p st
    while read -r p st; do
        [[ -n $p && $(proc_starttime "$p" 2>/dev/null) == "$st" ]] && echo "$p"
    done <<<"$1"
    return 0
}

# stop_daemon NAME [GRACE]: TERM to the main process (it stops its own
# workers; TERMing a neutron agent's privsep helpers at the same time makes
# its shutdown hang), then TERM to whatever of its processes outlived it, and
# KILL to the process group and all that is left after GRACE s (default 20).
stop_daemon() {
    local name=$1 grace=${2:-20} pid procs left t0=$EPOCHREALTIME end helpers_termed=no
    if ! pid=$(svc_pid "$name"); then
        rm -f "$RUN/$name.pid"
        return 0
    fi
    procs=$(daemon_procs "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    end=$((SECONDS + grace))
    while left=$(still_alive "$procs") && [[ -n $left ]] && ((SECONDS < end)); do
        if [[ $helpers_termed == no && " $(echo $left) " != *" $pid "* ]]; then
            kill -TERM $left 2>/dev/null || true
            helpers_termed=yes
        fi
        sleep 0.1
    done
    left=$(still_alive "$procs")
    if [[ -n $left ]]; then
        log "$name: $(echo $left | wc -w) process(es) still there after ${grace}s, sending KILL"
        # The group ID is only certain to be ours while its leader lives.
        if [[ " $(echo $left) " == *" $pid "* ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
        kill -KILL $left 2>/dev/null || true
        end=$((SECONDS + 5))
        while [[ -n $(still_alive "$procs") ]] && ((SECONDS < end)); do sleep 0.1; done
    fi
    rm -f "$RUN/$name.pid"
    log "stopped $name (pid $pid, $(elapsed "$t0")s)"
}

# --- waiting -----------------------------------------------------------------

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }

# wait_for NAME TIMEOUT CMD...: polls CMD; gives up early if service NAME
# died (then shows the end of its log).
wait_for() {
    local name=$1 timeout=$2 end; shift 2
    end=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! svc_pid "$name" >/dev/null; then
            tail -n 25 "$LOG/$name.out" >&2 2>/dev/null || true
            die "$name died while starting (logs in $LOG)"
        fi
        ((SECONDS < end)) || die "$name not ready after ${timeout}s (logs in $LOG)"
        sleep 0.2
    done
}

# --- OVS / linuxbridge / iptables leftovers ---------------------------------

# Netdev bridges leave persistent tap devices behind (they outlive
# ovs-vswitchd if it did not exit with --cleanup).
remove_ovs_taps() {
    local dev
    # Never under a running ovs-vswitchd (e.g. lab/down of another lab dir).
    pgrep -x ovs-vswitchd >/dev/null && return 0
    for dev in br-int br-tun br-ex br-physnet1 ovs-netdev; do
        if ip link show "$dev" >/dev/null 2>&1; then
            ip link del "$dev" 2>/dev/null && log "removed leftover device $dev" || true
        fi
    done
}

# Kernel bridges, VXLAN devices and iptables chains (its security groups)
# that the linuxbridge agent leaves behind. Call only while it is stopped.
remove_lb_leftovers() {
    local dev cmd t chains c r
    pgrep -f 'bin/neutron-linuxbridge-agent' >/dev/null && return 0
    for dev in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 |
                 grep -E '^(brq[0-9a-f-]{11}|vxlan-[0-9]+)$' || true); do
        ip link del "$dev" 2>/dev/null && log "removed linuxbridge leftover $dev" || true
    done
    for cmd in iptables ip6tables; do
        command -v "$cmd" >/dev/null || continue
        for t in filter raw mangle nat; do
            chains=$("$cmd" -w 5 -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^neutron-/ {print $2}')
            [[ -n $chains ]] || continue
            # Jumps from the built-in chains first, then the chains themselves.
            "$cmd" -w 5 -t "$t" -S | awk '$1 == "-A" && $2 !~ /^neutron-/ && / -j neutron-/' |
                while read -ra r; do r[0]=-D; "$cmd" -w 5 -t "$t" "${r[@]}" || true; done
            for c in $chains; do "$cmd" -w 5 -t "$t" -F "$c" || true; done
            for c in $chains; do "$cmd" -w 5 -t "$t" -X "$c" || true; done
            log "removed the linuxbridge agent's $cmd chains from table $t"
        done
    done
}

# The rule that lets bridged linuxbridge traffic through Docker's FORWARD DROP
# (br_netfilter). run/iptables-rule names the chain it went into.
LB_RULE=(-i brq+ -o brq+ -m comment --comment kuryr-lab -j ACCEPT)
remove_lb_rule() {
    local chain
    [[ -r $RUN/iptables-rule ]] || return 0
    chain=$(cat "$RUN/iptables-rule")
    while iptables -w 5 -C "$chain" "${LB_RULE[@]}" 2>/dev/null; do
        iptables -w 5 -D "$chain" "${LB_RULE[@]}" || break
    done
    rm -f "$RUN/iptables-rule"
    log "removed the $chain rule for linuxbridge traffic"
}
