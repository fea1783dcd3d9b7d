#!/usr/bin/env python3
"""LTE X2 handovers in ns-3 LENA that trigger real edgemob migrations.

Modelled on ns-3's ``lena-x2-handover`` (forced handovers) and
``lena-x2-handover-measures`` (A2-A4-RSRQ handovers of moving UEs). Every
``LteEnbRrc/HandoverStart`` of an X2 handover -- fired when the X2 HANDOVER
REQUEST ACKNOWLEDGE reaches the source eNB -- becomes a ``TriggerHandover``
on the agent serving the source cell, and every ``LteEnbRrc/HandoverEndOk``
a ``CompleteHandover`` on the agent serving the target cell, through the
``edgemob_ns3`` bridge. Intra-eNB handovers (source and target cell on the
same eNB: no X2) are recorded but never sent. Every event goes to a
handover trace (JSON lines), and the X2 links are captured
(``X2LinkEnablePcap``) into the output folder.

Run it with the Python of the ns-3 environment made by
``scripts/install-ns3.sh``::

    /opt/edgemob/ns3-venv/bin/python simulator-glue/scenarios/lena_x2_handover.py \\
        --scenario two-enbc.toml --out-dir out/ns3

By default it runs in real time (``RealtimeSimulatorImpl``), so simulated
time and the agents' time agree. ``--dry-run`` records without contacting
agents; without ``--scenario`` and ``--dry-run`` nothing is bridged (events
are only printed). The event lines are those of ns-3's example.
"""

import argparse
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="LENA X2 handovers that trigger edgemob migrations (ns-3 3.44 Python bindings)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--ues", type=int, default=1, help="number of UEs (IMSIs 1..N)")
    p.add_argument("--enbs", type=int, default=2, help="number of eNBs (cells 1..M, one per eNB)")
    p.add_argument(
        "--handover",
        action="append",
        default=[],
        metavar="T:IMSI:CELL",
        help="forced X2 handover: at T seconds, the UE with this IMSI to this cell (repeatable); "
        "default: every UE to cell 2 at 0.3 s (plus 10 ms per further UE), as in lena-x2-handover",
    )
    p.add_argument(
        "--measured",
        action="store_true",
        help="no forced handovers: UEs move and the A2-A4-RSRQ algorithm decides "
        "(as in lena-x2-handover-measures)",
    )
    p.add_argument("--speed", type=float, default=20.0, help="UE speed in m/s (--measured)")
    p.add_argument(
        "--distance",
        type=float,
        default=None,
        help="eNB spacing in m (default 100 forced, 500 --measured)",
    )
    p.add_argument(
        "--sim-time",
        type=float,
        default=None,
        help="simulated seconds (default: 0.49 s or 0.19 s after the last forced handover; "
        "--measured: the time to drive past every eNB)",
    )
    p.add_argument("--bearers", type=int, default=None, help="dedicated bearers per UE (default 2 forced, 0 --measured)")
    p.add_argument("--ideal-rrc", action="store_true", help="ideal RRC instead of the real RRC protocol")
    rt = p.add_mutually_exclusive_group()
    rt.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                    help="RealtimeSimulatorImpl: simulated time follows the wall clock")
    rt.add_argument("--no-realtime", dest="realtime", action="store_false",
                    help="run as fast as the simulator can")
    p.add_argument("--scenario", help="edgemob scenario (TOML): IMSI -> UE identity, cell -> agent socket")
    p.add_argument("--trace", help="handover trace to write (default OUT_DIR/handover-trace.jsonl)")
    p.add_argument("--results", help="per-migration results to write (default OUT_DIR/migrations.jsonl)")
    p.add_argument("--dry-run", action="store_true", help="record the trace, contact no agent")
    p.add_argument(
        "--no-complete",
        action="store_true",
        help="record handover ends but do not send CompleteHandover (for a caller that switches "
        "the UE's path itself and then reports it)",
    )
    p.add_argument("--out-dir", default="ns3-out", help="folder for the trace, results and X2 captures")
    p.add_argument("--no-pcap", action="store_true", help="do not capture the X2 links")
    p.add_argument("--seed", type=int, default=1, help="ns-3 RNG run number")
    p.add_argument("--quiet", action="store_true", help="do not print the event lines")
    args = p.parse_args(argv)
    if args.ues < 1 or args.enbs < 2:
        p.error("--ues must be ≥ 1 and --enbs ≥ 2")
    if args.measured and args.handover:
        p.error("--measured and --handover exclude each other")
    forced = []
    for spec in args.handover:
        try:
            t, imsi, cell = spec.split(":")
            forced.append((float(t), int(imsi), int(cell)))
        except ValueError:
            p.error(f"--handover {spec!r}: expected T:IMSI:CELL, e.g. 0.3:1:2")
    for t, imsi, cell in forced:
        if not (1 <= imsi <= args.ues) or not (1 <= cell <= args.enbs) or t <= 0:
            p.error(f"--handover {t}:{imsi}:{cell}: IMSI must be 1..{args.ues}, cell 1..{args.enbs}, T > 0")
    if not args.measured and not forced:
        forced = [(0.3 + 0.01 * i, i + 1, 2) for i in range(args.ues)]
    args.forced = sorted(forced)
    if args.distance is None:
        args.distance = 500.0 if args.measured else 100.0
    if args.bearers is None:
        args.bearers = 0 if args.measured else 2
    if args.sim_time is None:
        if args.measured:
            args.sim_time = (args.enbs + 1) * args.distance / args.speed
        else:
            args.sim_time = max(0.49, args.forced[-1][0] + 0.19)
    if args.trace is None:
        args.trace = os.path.join(args.out_dir, "handover-trace.jsonl")
    if args.results is None:
        args.results = os.path.join(args.out_dir, "migrations.jsonl")
    return args


# The adapter: Python functions cannot be connected to ns-3 trace sources
# directly, so these C++ sinks forward every event, with the simulator's own
# rendering of the time, to one Python callback. X2 and intra-eNB handovers
# are told apart exactly as LteEnbRrc does: an intra-eNB handover is one
# whose target cell is served by the source eNB's own device.
ADAPTER = r"""
#include "ns3/callback.h"
#include "ns3/config.h"
#include "ns3/lte-enb-net-device.h"
#include "ns3/node-list.h"
#include "ns3/nstime.h"
#include "ns3/simulator.h"
#include <cstdio>
#include <sstream>
#include <string>

namespace edgemob_ns3_adapter
{
// kind, time (ns), time as ns-3 prints it, context, imsi, cellId, rnti, otherCellId
using EventFn = void (*)(int, long long, const char*, const char*, unsigned long long,
                         unsigned int, unsigned int, unsigned int);
static EventFn g_fn = nullptr;

enum Kind
{
    ENB_CONNECTED = 0,
    UE_CONNECTED = 1,
    ENB_HO_START_X2 = 2,
    ENB_HO_START_INTRA = 3,
    UE_HO_START = 4,
    ENB_HO_END_OK = 5,
    UE_HO_END_OK = 6,
    HO_FAILURE_NO_PREAMBLE = 7,
    HO_FAILURE_MAX_RACH = 8,
    HO_FAILURE_LEAVING = 9,
    HO_FAILURE_JOINING = 10
};

static void
Emit(int kind, const std::string& ctx, uint64_t imsi, uint16_t cell, uint16_t rnti, uint16_t other)
{
    if (!g_fn)
    {
        return;
    }
    std::ostringstream now;
    now << ns3::Simulator::Now().As(ns3::Time::S);
    g_fn(kind, (long long)ns3::Simulator::Now().GetNanoSeconds(), now.str().c_str(), ctx.c_str(),
         imsi, cell, rnti, other);
}

// "/NodeList/N/DeviceList/D/..." -> whether that eNB device serves `cell`.
static bool
DeviceServesCell(const std::string& ctx, uint16_t cell)
{
    unsigned node = 0;
    unsigned dev = 0;
    if (std::sscanf(ctx.c_str(), "/NodeList/%u/DeviceList/%u/", &node, &dev) != 2 ||
        node >= ns3::NodeList::GetNNodes())
    {
        return false;
    }
    ns3::Ptr<ns3::Node> n = ns3::NodeList::GetNode(node);
    if (dev >= n->GetNDevices())
    {
        return false;
    }
    ns3::Ptr<ns3::LteEnbNetDevice> enb = n->GetDevice(dev)->GetObject<ns3::LteEnbNetDevice>();
    return enb && enb->HasCellId(cell);
}

static void EnbConnected(std::string c, uint64_t i, uint16_t cell, uint16_t r) { Emit(ENB_CONNECTED, c, i, cell, r, 0); }
static void UeConnected(std::string c, uint64_t i, uint16_t cell, uint16_t r) { Emit(UE_CONNECTED, c, i, cell, r, 0); }
static void EnbHoStart(std::string c, uint64_t i, uint16_t cell, uint16_t r, uint16_t target)
{
    Emit(DeviceServesCell(c, target) ? ENB_HO_START_INTRA : ENB_HO_START_X2, c, i, cell, r, target);
}
static void UeHoStart(std::string c, uint64_t i, uint16_t cell, uint16_t r, uint16_t target) { Emit(UE_HO_START, c, i, cell, r, target); }
static void EnbHoEndOk(std::string c, uint64_t i, uint16_t cell, uint16_t r) { Emit(ENB_HO_END_OK, c, i, cell, r, 0); }
static void UeHoEndOk(std::string c, uint64_t i, uint16_t cell, uint16_t r) { Emit(UE_HO_END_OK, c, i, cell, r, 0); }
// The failure traces pass (imsi, rnti, cellId).
static void FailNoPreamble(std::string c, uint64_t i, uint16_t r, uint16_t cell) { Emit(HO_FAILURE_NO_PREAMBLE, c, i, cell, r, 0); }
static void FailMaxRach(std::string c, uint64_t i, uint16_t r, uint16_t cell) { Emit(HO_FAILURE_MAX_RACH, c, i, cell, r, 0); }
static void FailLeaving(std::string c, uint64_t i, uint16_t r, uint16_t cell) { Emit(HO_FAILURE_LEAVING, c, i, cell, r, 0); }
static void FailJoining(std::string c, uint64_t i, uint16_t r, uint16_t cell) { Emit(HO_FAILURE_JOINING, c, i, cell, r, 0); }

void
Connect(EventFn fn)
{
    using ns3::Config::Connect;
    using ns3::MakeCallback;
    g_fn = fn;
    const std::string enb = "/NodeList/*/DeviceList/*/LteEnbRrc/";
    const std::string ue = "/NodeList/*/DeviceList/*/LteUeRrc/";
    Connect(enb + "ConnectionEstablished", MakeCallback(&EnbConnected));
    Connect(ue + "ConnectionEstablished", MakeCallback(&UeConnected));
    Connect(enb + "HandoverStart", MakeCallback(&EnbHoStart));
    Connect(ue + "HandoverStart", MakeCallback(&UeHoStart));
    Connect(enb + "HandoverEndOk", MakeCallback(&EnbHoEndOk));
    Connect(ue + "HandoverEndOk", MakeCallback(&UeHoEndOk));
    Connect(enb + "HandoverFailureNoPreamble", MakeCallback(&FailNoPreamble));
    Connect(enb + "HandoverFailureMaxRach", MakeCallback(&FailMaxRach));
    Connect(enb + "HandoverFailureLeaving", MakeCallback(&FailLeaving));
    Connect(enb + "HandoverFailureJoining", MakeCallback(&FailJoining));
}

void
Disconnect()
{
    g_fn = nullptr;
}
} // namespace edgemob_ns3_adapter
"""

FAILURE_CAUSE = {7: "no_preamble", 8: "max_rach", 9: "leaving", 10: "joining"}


class Events:
    """Receives the adapter's events: prints them like ns-3's example and
    hands the handover ones to the bridge."""

    def __init__(self, bridge, quiet):
        self.bridge = bridge
        self.quiet = quiet
        self.errors = []
        self.counts = {"x2_starts": 0, "intra_enb": 0, "end_ok": 0, "failures": 0}

    def say(self, line):
        if not self.quiet:
            print(line, flush=True)

    def __call__(self, kind, now_ns, now, ctx, imsi, cell, rnti, other):
        try:
            self.handle(kind, now_ns / 1e9, now.decode() if isinstance(now, bytes) else now,
                        ctx.decode() if isinstance(ctx, bytes) else ctx, imsi, cell, rnti, other)
        except Exception as e:  # never let an exception unwind into the simulator
            self.errors.append(f"{type(e).__name__}: {e}")

    def handle(self, kind, t, now, ctx, imsi, cell, rnti, other):
        b = self.bridge
        if kind == 0:
            self.say(f"{now} {ctx} eNB CellId {cell}: successful connection of UE with IMSI {imsi} RNTI {rnti}")
        elif kind == 1:
            self.say(f"{now} {ctx} UE IMSI {imsi}: connected to CellId {cell} with RNTI {rnti}")
        elif kind in (2, 3):
            self.say(f"{now} {ctx} eNB CellId {cell}: start handover of UE with IMSI {imsi} RNTI {rnti} to CellId {other}")
            x2 = kind == 2
            self.counts["x2_starts" if x2 else "intra_enb"] += 1
            if b is not None:
                b.handover_start(t, imsi, rnti, cell, other, x2)
        elif kind == 4:
            self.say(f"{now} {ctx} UE IMSI {imsi}: previously connected to CellId {cell} with RNTI {rnti}, doing handover to CellId {other}")
        elif kind == 5:
            self.say(f"{now} {ctx} eNB CellId {cell}: completed handover of UE with IMSI {imsi} RNTI {rnti}")
            self.counts["end_ok"] += 1
            if b is not None:
                b.handover_end_ok(t, imsi, rnti, cell)
        elif kind == 6:
            self.say(f"{now} {ctx} UE IMSI {imsi}: successful handover to CellId {cell} with RNTI {rnti}")
        elif kind in FAILURE_CAUSE:
            self.say(f"{now} {ctx} eNB CellId {cell} IMSI {imsi} RNTI {rnti} handover failure")
            self.counts["failures"] += 1
            if b is not None:
                b.handover_failure(t, FAILURE_CAUSE[kind], imsi, rnti, cell)


def make_bridge(args):
    if not args.scenario and not args.dry_run:
        print("edgemob: no --scenario and no --dry-run: events are printed, not bridged", file=sys.stderr)
        return None
    import edgemob_ns3

    return edgemob_ns3.Bridge(
        args.scenario, args.trace, dry_run=args.dry_run,
        results_path=None if args.dry_run else args.results,
        send_complete=not args.no_complete,
    )


def build(ns, args):
    """The LENA topology of ns-3's examples; returns (lteHelper, enbDevs, ueDevs)."""
    ns.Config.SetDefault("ns3::UdpClient::Interval", ns.TimeValue(ns.MilliSeconds(10)))
    ns.Config.SetDefault("ns3::UdpClient::MaxPackets", ns.UintegerValue(1000000))
    ns.Config.SetDefault("ns3::LteHelper::UseIdealRrc", ns.BooleanValue(args.ideal_rrc or args.measured))
    if not args.no_pcap:
        ns.Config.SetDefault("ns3::NoBackhaulEpcHelper::X2LinkEnablePcap", ns.BooleanValue(True))
        ns.Config.SetDefault("ns3::NoBackhaulEpcHelper::X2LinkPcapPrefix",
                             ns.StringValue(os.path.join(args.out_dir, "x2")))
    ns.RngSeedManager.SetRun(args.seed)

    lte = ns.CreateObject[ns.LteHelper]()
    epc = ns.CreateObject[ns.PointToPointEpcHelper]()
    lte.SetEpcHelper(epc)
    lte.SetSchedulerType("ns3::RrFfMacScheduler")
    if args.measured:
        lte.SetHandoverAlgorithmType("ns3::A2A4RsrqHandoverAlgorithm")
        lte.SetHandoverAlgorithmAttribute("ServingCellThreshold", ns.UintegerValue(30))
        lte.SetHandoverAlgorithmAttribute("NeighbourCellOffset", ns.UintegerValue(1))
    else:
        lte.SetHandoverAlgorithmType("ns3::NoOpHandoverAlgorithm")

    pgw = epc.GetPgwNode()
    remote_hosts = ns.NodeContainer()
    remote_hosts.Create(1)
    remote = remote_hosts.Get(0)
    internet = ns.InternetStackHelper()
    internet.Install(remote_hosts)
    p2ph = ns.PointToPointHelper()
    p2ph.SetDeviceAttribute("DataRate", ns.DataRateValue(ns.DataRate("100Gb/s")))
    p2ph.SetDeviceAttribute("Mtu", ns.UintegerValue(1500))
    p2ph.SetChannelAttribute("Delay", ns.TimeValue(ns.Seconds(0.010)))
    internet_devs = p2ph.Install(pgw, remote)
    ipv4h = ns.Ipv4AddressHelper()
    ipv4h.SetBase(ns.Ipv4Address("1.0.0.0"), ns.Ipv4Mask("255.0.0.0"))
    internet_ifaces = ipv4h.Assign(internet_devs)
    remote_addr = internet_ifaces.GetAddress(1)
    routing = ns.Ipv4StaticRoutingHelper()
    remote_routing = routing.GetStaticRouting(remote.GetObject[ns.Ipv4]())
    remote_routing.AddNetworkRouteTo(ns.Ipv4Address("7.0.0.0"), ns.Ipv4Mask("255.0.0.0"), 1)

    enb_nodes = ns.NodeContainer()
    ue_nodes = ns.NodeContainer()
    enb_nodes.Create(args.enbs)
    ue_nodes.Create(args.ues)

    enb_pos = ns.CreateObject[ns.ListPositionAllocator]()
    d = args.distance
    for i in range(args.enbs):
        if args.measured:
            enb_pos.Add(ns.Vector(d * (i + 1), d, 0))
        else:
            enb_pos.Add(ns.Vector(d * 2 * i - d, 0, 0))
    enb_mob = ns.MobilityHelper()
    enb_mob.SetMobilityModel("ns3::ConstantPositionMobilityModel")
    enb_mob.SetPositionAllocator(enb_pos)
    enb_mob.Install(enb_nodes)

    ue_mob = ns.MobilityHelper()
    if args.measured:
        ue_mob.SetMobilityModel("ns3::ConstantVelocityMobilityModel")
        ue_mob.Install(ue_nodes)
        for u in range(args.ues):
            node = ue_nodes.Get(u)
            node.GetObject[ns.MobilityModel]().SetPosition(ns.Vector(0, d + 10.0 * u, 0))
            node.GetObject[ns.ConstantVelocityMobilityModel]().SetVelocity(ns.Vector(args.speed, 0, 0))
    else:
        ue_pos = ns.CreateObject[ns.ListPositionAllocator]()
        for _ in range(args.ues):
            ue_pos.Add(ns.Vector(0, 0, 0))
        ue_mob.SetMobilityModel("ns3::ConstantPositionMobilityModel")
        ue_mob.SetPositionAllocator(ue_pos)
        ue_mob.Install(ue_nodes)

    if args.measured:
        ns.Config.SetDefault("ns3::LteEnbPhy::TxPower", ns.DoubleValue(46.0))
    enb_devs = lte.InstallEnbDevice(enb_nodes)
    ue_devs = lte.InstallUeDevice(ue_nodes)
    internet.Install(ue_nodes)
    ue_ifaces = epc.AssignUeIpv4Address(ns.NetDeviceContainer(ue_devs))
    for u in range(args.ues):
        lte.Attach(ue_devs.Get(u), enb_devs.Get(0))

    # Traffic as in the examples: per bearer one UDP flow each way.
    dl_port, ul_port = 10000, 20000
    start = ns.CreateObject[ns.UniformRandomVariable]()
    start.SetAttribute("Min", ns.DoubleValue(0.0 if args.measured else 0.05))
    start.SetAttribute("Max", ns.DoubleValue(0.010 if args.measured else 0.06))
    for u in range(args.ues):
        ue = ue_nodes.Get(u)
        ue_routing = routing.GetStaticRouting(ue.GetObject[ns.Ipv4]())
        ue_routing.SetDefaultRoute(epc.GetUeDefaultGatewayAddress(), 1)
        for _ in range(args.bearers):
            dl_port += 1
            ul_port += 1
            clients = ns.ApplicationContainer()
            servers = ns.ApplicationContainer()
            dl_client = ns.UdpClientHelper(ue_ifaces.GetAddress(u).ConvertTo(), dl_port)
            clients.Add(dl_client.Install(remote))
            dl_sink = ns.PacketSinkHelper("ns3::UdpSocketFactory",
                                          ns.InetSocketAddress(ns.Ipv4Address.GetAny(), dl_port).ConvertTo())
            servers.Add(dl_sink.Install(ue))
            ul_client = ns.UdpClientHelper(remote_addr.ConvertTo(), ul_port)
            clients.Add(ul_client.Install(ue))
            ul_sink = ns.PacketSinkHelper("ns3::UdpSocketFactory",
                                          ns.InetSocketAddress(ns.Ipv4Address.GetAny(), ul_port).ConvertTo())
            servers.Add(ul_sink.Install(remote))
            tft = ns.Create[ns.EpcTft]()
            dlpf = ns.EpcTft.PacketFilter()
            dlpf.localPortStart = dl_port
            dlpf.localPortEnd = dl_port
            tft.Add(dlpf)
            ulpf = ns.EpcTft.PacketFilter()
            ulpf.remotePortStart = ul_port
            ulpf.remotePortEnd = ul_port
            tft.Add(ulpf)
            bearer = ns.EpsBearer(ns.EpsBearer.NGBR_VIDEO_TCP_DEFAULT)
            lte.ActivateDedicatedEpsBearer(ue_devs.Get(u), bearer, tft)
            t = ns.Seconds(start.GetValue())
            servers.Start(t)
            clients.Start(t)
            clients.Stop(ns.Seconds(args.sim_time))

    # X2 between every pair of eNBs (links numbered in this order: see x2pcap).
    lte.AddX2Interface(enb_nodes)

    # Forced handovers: track where each UE is to name the source eNB.
    serving = {imsi: 1 for imsi in range(1, args.ues + 1)}
    for t, imsi, cell in args.forced:
        src = serving[imsi]
        if src == cell:
            raise SystemExit(f"--handover {t}:{imsi}:{cell}: UE {imsi} is already in cell {cell} then")
        lte.HandoverRequest(ns.Seconds(t), ue_devs.Get(imsi - 1), enb_devs.Get(src - 1), enb_devs.Get(cell - 1))
        serving[imsi] = cell
    return lte, enb_devs, ue_devs


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    bridge = make_bridge(args)  # before importing ns-3: fail fast on a bad scenario
    t_import = time.monotonic()
    from ns import ns

    print(f"edgemob: ns-3 imported in {time.monotonic() - t_import:.1f} s", file=sys.stderr)
    if args.realtime:
        ns.GlobalValue.Bind("SimulatorImplementationType", ns.StringValue("ns3::RealtimeSimulatorImpl"))
    # The helpers must outlive the run: dropping the LteHelper (and with it
    # the EPC helper) leaves the EPC nodes half torn down.
    topology = build(ns, args)  # noqa: F841
    # Only once the topology exists: compiling the adapter's headers earlier
    # breaks the initialisation of the nodes' traffic-control layers.
    ns.cppyy.cppdef(ADAPTER)
    adapter = ns.cppyy.gbl.edgemob_ns3_adapter
    events = Events(bridge, args.quiet)
    adapter.Connect(events)
    # Let the bridge's and other Python threads run while the simulator runs.
    ns.Simulator.Run.__release_gil__ = True
    ns.Simulator.Stop(ns.Seconds(args.sim_time) + ns.MilliSeconds(20))
    wall = time.monotonic()
    # In real time, simulated time 0 is now: callers that line real traffic
    # up with the simulated handovers (`edgemob-lab demo --trigger ns3`) wait for
    # this line.
    print("edgemob: simulation started", file=sys.stderr, flush=True)
    try:
        ns.Simulator.Run()
    except BaseException:
        # Interrupted: still wait for the agents' answers and close the trace.
        adapter.Disconnect()
        if bridge is not None:
            bridge.close()
        raise
    adapter.Disconnect()
    wall = time.monotonic() - wall
    ns.Simulator.Destroy()
    del topology

    print(
        f"edgemob: simulated {args.sim_time:.3f} s in {wall:.3f} s "
        f"({'real time' if args.realtime else 'as fast as possible'}); "
        f"X2 handovers {events.counts['x2_starts']}, intra-eNB {events.counts['intra_enb']}, "
        f"completed {events.counts['end_ok']}, failures {events.counts['failures']}",
        file=sys.stderr,
    )
    status = 0
    if events.errors:
        status = 1
        for e in events.errors:
            print(f"edgemob: error while handling an event: {e}", file=sys.stderr)
    if bridge is not None:
        stats = bridge.close()
        print(f"edgemob: trace {stats['trace_path']} ({stats['events']} events)", file=sys.stderr)
        if not stats["dry_run"]:
            sd, st = stats["send_delay_ms"], stats["start_delay_ms"]
            print(
                f"edgemob: triggers sent {stats['triggers_sent']}, accepted {stats['triggers_accepted']}, "
                f"migrations completed {stats['migrations_completed']}, not completed "
                f"{stats['migrations_not_completed']}, completions sent {stats['completes_sent']}, "
                f"errors {stats['errors']}",
                file=sys.stderr,
            )
            if sd["n"]:
                print(
                    f"edgemob: delay from the simulated X2 HO Request ACK to the trigger being sent: "
                    f"median {sd['median']:.3f} ms, max {sd['max']:.3f} ms; to the migration's start: "
                    + (f"median {st['median']:.3f} ms, max {st['max']:.3f} ms" if st["n"] else "n/a"),
                    file=sys.stderr,
                )
            print(f"edgemob: results {args.results}", file=sys.stderr)
            if stats["errors"] or stats["migrations_not_completed"] or stats["unfinished"]:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
