#!/bin/bash
# Daemon CPU with an LLRP reader streaming 110 tags per 100 ms (1,100 tags/s).
set -e
BIN=${BIN:-target/release}
D=${WORKDIR:-/tmp/custos-llrp-bench}; rm -rf $D; mkdir -p $D
$BIN/custosd keygen --out $D/key >/dev/null
SRVPUB=$($BIN/custosd keygen --out $D/srv 2>/dev/null | tail -1)
$BIN/custos-sim llrp-reader --listen 127.0.0.1:0 --control $D/ctl.sock > $D/sim.out 2>$D/sim.err &
SIM=$!
for i in $(seq 50); do grep -q "ready llrp-reader" $D/sim.out && break; sleep 0.1; done
ADDR=$(grep "ready llrp-reader" $D/sim.out | awk '{print $3}')
python3 - $D/ctl.sock <<'PY'
import socket,sys,json
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
for a in (1,2):
    tags=["3034%020x"%(a*1000+i) for i in range(55)]
    s.sendall((json.dumps({"op":"field","antenna":a,"tags":tags})+"\n").encode())
    print(s.recv(4096).decode().strip())
PY
cat > $D/custosd.toml <<T
device_id = "gate-bench"
server = "http://127.0.0.1:9"
key_file = "$D/key"
data_dir = "$D/data"
server_public_key = "$SRVPUB"

[[readers]]
name = "uhf"
protocol = "llrp"
address = "$ADDR"
inner_antennas = [1]
outer_antennas = [2]
T
$BIN/custosd run --config $D/custosd.toml > $D/d.out 2>$D/d.err &
DMN=$!
sleep 5   # let it connect and start the ROSpec before the window opens
rx() { ss -tin dst $ADDR | grep -o "bytes_received:[0-9]*" | cut -d: -f2; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
a=$(cpu $DMN); s0=$(cpu $SIM); t0=$(date +%s.%N); r0=$(rx); l0=$(cat /proc/loadavg)
sleep ${WINDOW:-30}
a2=$(cpu $DMN); s2=$(cpu $SIM); t2=$(date +%s.%N); r2=$(rx); l2=$(cat /proc/loadavg)
TCK=$(getconf CLK_TCK)
echo "received $(( r2-r0 )) bytes"; echo "window $(echo "$t2-$t0"|bc) s; daemon $(( a2-a )) ticks ($TCK/s); sim $(( s2-s0 )) ticks; load $l0 -> $l2"
ss -tin dst $ADDR | head -4 || true
grep -c . $D/d.err; grep -i "rospec\|llrp\|fault" $D/d.err | head -5
kill $DMN $SIM
