// An OSC receiver written by others: the npm "osc" package (osc.js), not python-osc. It prints
// {"ready": port} once listening, then one JSON line per packet received on UDP.
//
//   node tests/osc_receive.js DIR_WITH_NODE_MODULES [PORT]      (PORT 0 or absent: any free one)

const path = require("path");
const osc = require(path.join(process.argv[2], "node_modules", "osc"));

const port = new osc.UDPPort({
  localAddress: "127.0.0.1",
  localPort: Number(process.argv[3] || 0),
  metadata: true, // keep each argument's OSC type tag ("f", "s") so the test can check it
});

// Wall-clock milliseconds with sub-millisecond resolution, comparable with Python's time.time().
const nowMs = () => performance.timeOrigin + performance.now();

function plain(packet) {
  if (packet.packets) {
    // timeTag.raw is the NTP [seconds since 1900, fraction / 2^32] exactly as sent
    return { timeTag: packet.timeTag.raw, packets: packet.packets.map(plain) };
  }
  return { address: packet.address, args: packet.args.map((a) => ({ type: a.type, value: a.value })) };
}

port.on("ready", () => {
  process.stdout.write(JSON.stringify({ ready: port.socket.address().port }) + "\n");
});
port.on("osc", (packet) => {
  process.stdout.write(JSON.stringify({ recv_ms: nowMs(), packet: plain(packet) }) + "\n");
});
port.on("error", (err) => process.stderr.write(`osc.js: ${err}\n`));
port.open();
