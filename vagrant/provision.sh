#!/bin/bash
# Provision one VM of the okopy lab (see Vagrantfile):
#   provision.sh controller
#   provision.sh switch LOCAL_IP PEER_IP DPID HOST_CIDR CONTROLLER_IP
set -euo pipefail
cd /okopy
scripts/setup
venv=/okopy/.venv
run=/var/run/okopy
mkdir -p "$run"

if [[ $1 == controller ]]; then
    [[ -s $run/api-token ]] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$run/api-token"
    "$venv/bin/okopy" check-config vagrant/policy.yaml
    # A transient systemd unit keeps it running and restarts it if it dies.
    systemctl stop okopy-controller 2>/dev/null || true
    systemd-run --unit okopy-controller --property Restart=always \
        "$venv/bin/okopy" controller --policy /okopy/vagrant/policy.yaml \
        --listen 0.0.0.0:6653 --api 0.0.0.0:8080 --api-token-file "$run/api-token"
    exit 0
fi

local_ip=$2 peer_ip=$3 dpid=$4 host_cidr=$5 controller_ip=$6
make -C vm -j2
"$venv/bin/okopy" ovs build
ovs=/okopy/build/ovs
export OVS_RUNDIR=$run OVS_DBDIR=$run OVS_LOGDIR=$run OVS_SYSCONFDIR=$run
vsctl() { "$ovs/utilities/ovs-vsctl" --db="unix:$run/db.sock" "$@"; }

if [[ ! -S $run/db.sock ]]; then
    "$ovs/ovsdb/ovsdb-tool" create "$run/conf.db" /okopy/build/ovs-src/vswitchd/vswitch.ovsschema
    "$ovs/ovsdb/ovsdb-server" "$run/conf.db" --remote="punix:$run/db.sock" \
        --pidfile="$run/ovsdb-server.pid" --log-file="$run/ovsdb-server.log" --detach
    vsctl --no-wait init
    "$ovs/vswitchd/ovs-vswitchd" "unix:$run/db.sock" --pidfile="$run/ovs-vswitchd.pid" \
        --log-file="$run/ovs-vswitchd.log" --detach
fi

# Userspace tunnelling: the private NIC moves into br-phy, which takes its
# address, so that the userspace datapath can send VXLAN packets itself.
nic=$(ip -o -4 addr show | awk -v ip="$local_ip" '$4 ~ "^"ip"/" {print $2; exit}')
nic=${nic:-eth1}
vsctl --may-exist add-br br-phy -- set bridge br-phy datapath_type=netdev
vsctl --may-exist add-port br-phy "$nic"
ip addr flush dev "$nic" || true
ip addr replace "$local_ip/24" dev br-phy
ip link set br-phy up
"$ovs/utilities/ovs-appctl" -t "$run/ovs-vswitchd.$(cat "$run/ovs-vswitchd.pid").ctl" \
    ovs/route/add "${local_ip%.*}.0/24" br-phy || true

vsctl --may-exist add-br br0 -- set bridge br0 datapath_type=netdev \
    other-config:datapath-id="$(printf %016x "$dpid")" fail_mode=secure protocols=OpenFlow13
vsctl --may-exist add-port br0 vxlan0 -- set interface vxlan0 type=vxlan \
    options:remote_ip="$peer_ip" ofport_request=10
ip netns add host 2>/dev/null || true
ip link add veth-host type veth peer name eth0 netns host 2>/dev/null || true
ip link set veth-host up
ip -n host link set eth0 up
ip -n host addr replace "$host_cidr" dev eth0
vsctl --may-exist add-port br0 veth-host -- set interface veth-host ofport_request=1
vsctl set-controller br0 "tcp:$controller_ip:6653" -- set controller br0 max_backoff=1000
