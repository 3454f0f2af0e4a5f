#!/bin/bash
# Provision one VM of the okopy lab (see Vagrantfile and README.md):
#   provision.sh controller
#   provision.sh switch LOCAL_IP PEER_IP DPID HOST_CIDR CONTROLLER_IP
#
# In the VMs it runs as root with no environment; every default below is
# the VM's.  tests/integration/test_vagrant_provision.py runs it inside
# network namespaces (`ip netns exec`) that stand in for the VMs, with:
#   OKOPY_DIR          the checkout (default /okopy, the synced folder)
#   OKOPY_VENV         its virtualenv (default $OKOPY_DIR/.venv)
#   OKOPY_BUILD_DIR    its build tree (default $OKOPY_DIR/build)
#   OKOPY_RUN          run directory: database, sockets, pid and log files,
#                      the API token (default /var/run/okopy)
#   OKOPY_HOST_NS      the host's network namespace (default host), created
#                      if missing; under `ip netns exec`, where `ip netns add`
#                      would be private to that command, create it first.
#   OKOPY_NIC          the private network's interface (default: the one
#                      holding LOCAL_IP, else eth1)
#   OKOPY_SKIP_SETUP=1 skip scripts/setup and the builds (libokovm, Open
#                      vSwitch): the caller has done them
#   OKOPY_FOREGROUND=1 controller: after the checks, exec the controller in
#                      the foreground instead of a systemd unit
# Switch daemons always detach and write $OKOPY_RUN/<daemon>.pid.
set -euo pipefail

dir=${OKOPY_DIR:-/okopy}
venv=${OKOPY_VENV:-$dir/.venv}
build=${OKOPY_BUILD_DIR:-$dir/build}
run=${OKOPY_RUN:-/var/run/okopy}
host_ns=${OKOPY_HOST_NS:-host}
role=${1:?usage: provision.sh controller | switch LOCAL_IP PEER_IP DPID HOST_CIDR CONTROLLER_IP}

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }

cd "$dir"
export OKOPY_VENV=$venv OKOPY_BUILD_DIR=$build
if [[ ${OKOPY_SKIP_SETUP:-} != 1 ]]; then
    scripts/setup
    # Both roles need libokovm: the controller verifies the policy's
    # programs with it, ovs-vswitchd links it.
    make -C vm -j2 --no-print-directory O="$build/vm"
fi
mkdir -p "$run"

if [[ $role == controller ]]; then
    [[ -s $run/api-token ]] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$run/api-token"
    chmod 600 "$run/api-token"
    "$venv/bin/okopy" check-config "$dir/vagrant/policy.yaml"
    ctl=("$venv/bin/okopy" controller --policy "$dir/vagrant/policy.yaml"
         --listen 0.0.0.0:6653 --api 0.0.0.0:8080 --api-token-file "$run/api-token")
    if [[ ${OKOPY_FOREGROUND:-} == 1 ]]; then
        exec "${ctl[@]}"
    fi
    # A transient systemd unit keeps it running and restarts it if it dies.
    systemctl stop okopy-controller 2>/dev/null || true
    systemctl reset-failed okopy-controller 2>/dev/null || true
    systemd-run --unit okopy-controller --property Restart=always "${ctl[@]}"
    say "controller started: journalctl -u okopy-controller"
    exit 0
fi
[[ $role == switch && $# -eq 6 ]] || die "usage: provision.sh switch LOCAL_IP PEER_IP DPID HOST_CIDR CONTROLLER_IP"

local_ip=$2 peer_ip=$3 dpid=$4 host_cidr=$5 controller_ip=$6
[[ ${OKOPY_SKIP_SETUP:-} == 1 ]] || "$venv/bin/okopy" ovs build
ovs=$build/ovs
export OVS_RUNDIR=$run OVS_DBDIR=$run OVS_LOGDIR=$run OVS_SYSCONFDIR=$run
vsctl() { "$ovs/utilities/ovs-vsctl" --db="unix:$run/db.sock" "$@"; }
appctl() { "$ovs/utilities/ovs-appctl" -t "$run/ovs-vswitchd.ctl" "$@"; }
running() { [[ -s $run/$1.pid ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

# Private daemons, started once (a second provisioning finds them running).
if ! running ovsdb-server; then
    [[ -e $run/conf.db ]] ||
        "$ovs/ovsdb/ovsdb-tool" create "$run/conf.db" "$build/ovs-src/vswitchd/vswitch.ovsschema"
    "$ovs/ovsdb/ovsdb-server" "$run/conf.db" --remote="punix:$run/db.sock" \
        --pidfile="$run/ovsdb-server.pid" --unixctl="$run/ovsdb-server.ctl" \
        --log-file="$run/ovsdb-server.log" --detach --no-chdir
    vsctl --no-wait init
fi
if ! running ovs-vswitchd; then
    "$ovs/vswitchd/ovs-vswitchd" "unix:$run/db.sock" --pidfile="$run/ovs-vswitchd.pid" \
        --unixctl="$run/ovs-vswitchd.ctl" --log-file="$run/ovs-vswitchd.log" --detach --no-chdir
fi

# Userspace tunnelling: the private NIC moves into br-phy, which takes its
# address, so that the userspace datapath can send VXLAN packets itself.
nic=${OKOPY_NIC:-$(ip -o -4 addr show | awk -v a="$local_ip/" 'index($4, a) == 1 {print $2; exit}')}
if [[ $nic == br-phy ]]; then
    # Provisioned before: the NIC is the port of br-phy that is not br-phy.
    nic=$(vsctl list-ports br-phy | head -n1)
fi
nic=${nic:-eth1}
ip link show "$nic" >/dev/null || die "no interface $nic for $local_ip (set OKOPY_NIC)"
# The userspace datapath reads the NIC's frames with AF_PACKET, as they
# are: received checksums left for the guest to fill in (virtio) and frames
# merged by GRO/LRO would be forwarded broken or dropped as too long.
for feature in rx gro lro; do
    ethtool -K "$nic" "$feature" off 2>/dev/null || true
done
# The kernel still sees the NIC's frames too: have it drop the IP packets
# it would otherwise take twice (tunnel packets for a port it has no
# socket on, the controller's TCP), since LOCAL_IP's route is via br-phy.
echo 1 > "/proc/sys/net/ipv4/conf/$nic/rp_filter"
# br-phy answers for LOCAL_IP with the NIC's MAC: a hypervisor's virtual
# network (VirtualBox's default "deny" promiscuous mode) delivers a VM
# only the frames sent to its NIC's address.
vsctl --may-exist add-br br-phy -- set bridge br-phy datapath_type=netdev \
    other-config:hwaddr="$(ip -br link show dev "$nic" | awk '{print $3}')"
vsctl --may-exist add-port br-phy "$nic"
ip addr flush dev "$nic"
ip link set "$nic" up
ip addr replace "$local_ip/24" dev br-phy
ip link set br-phy up
# Belt and braces: ovs-vswitchd also learns this route from the kernel.
appctl ovs/route/add "${local_ip%.*}.0/24" br-phy >/dev/null || true

vsctl --may-exist add-br br0 -- set bridge br0 datapath_type=netdev \
    other-config:datapath-id="$(printf %016x "$dpid")" fail_mode=secure protocols=OpenFlow13
vsctl --may-exist add-port br0 vxlan0 -- set interface vxlan0 type=vxlan \
    options:remote_ip="$peer_ip" ofport_request=10

# The host: a network namespace with eth0 on port 1 of br0.  VXLAN over
# IPv4 adds 50 bytes and the private network's MTU is 1500, so the host
# sends at most 1450.
if ! ip -n "$host_ns" link show lo >/dev/null 2>&1; then
    # Under `ip netns exec`, /run/netns is a slave copy ("master:N" in
    # mountinfo): a namespace `ip netns add` made would be seen by no one else.
    if awk '$5 == "/run/netns" && / master:/ {m = 1} END {exit !m}' /proc/self/mountinfo; then
        die "namespace $host_ns does not exist: create it first (under ip netns exec, ip netns add would be private)"
    fi
    ip netns add "$host_ns"
fi
ip -n "$host_ns" link set lo up
if ! ip link show veth-host >/dev/null 2>&1; then
    ip link add veth-host type veth peer name eth0 netns "$host_ns"
fi
ip link set veth-host mtu 1450 up
ip -n "$host_ns" link set eth0 mtu 1450 up
ip -n "$host_ns" addr replace "$host_cidr" dev eth0
# veth leaves checksums to the receiver, which AF_PACKET does not fix.
ethtool -K veth-host tx off >/dev/null
ip netns exec "$host_ns" ethtool -K eth0 tx off >/dev/null
vsctl --may-exist add-port br0 veth-host -- set interface veth-host ofport_request=1
vsctl set-controller br0 "tcp:$controller_ip:6653" -- set controller br0 max_backoff=1000
say "switch dpid $dpid up: br0 (host $host_ns $host_cidr on port 1, vxlan to $peer_ip on port 10), controller $controller_ip"
