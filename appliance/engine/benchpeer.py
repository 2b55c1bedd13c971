"""The far ends for `pbx bench calls`: a provider that places calls and a phone that answers.

    python -m appliance.engine.benchpeer answer PORT             then stdin: "hangup" hangs up every call,
                                                                "media" prints its calls' RTP statistics
    python -m appliance.engine.benchpeer call PORT URI [RTP_PORT [DIRECT_URI]]
                                                                then stdin: N HOLD_SECONDS [media] [paced]

The caller places N calls (paced, 50 a second, as calls arrive from a real
trunk rather than all in one packet burst), times each INVITE to its 180,
waits until all are answered, says "held" and holds them HOLD_SECONDS, then
hangs up and prints a JSON summary.  One pjsua2 Endpoint per process.

Both ends talk: every call carries a steady tone from the moment its media
is up (the caller 440 Hz, the phone 880 Hz), so RTP flows both ways through
the engine for the whole hold.  With "media" the caller prints its calls' RTP
statistics at the end of the hold ({"talked": ...}) and waits for a
"hangup" line, so that the phone's can be read ("media") before any call
ends.  With "paced" it hangs its calls up at the pace it placed them, as
calls end one by one in an office; without, all at once (the crossing
BYEs of tests/engine/test_hangup_storm.py).

With DIRECT_URI (the phone itself) it also places, half a pace after each
call, a call straight to the phone, times it the same way and hangs it up
once answered: the delay of the same call without the engine, measured
under the same load as the call before it.
"""

from __future__ import annotations

import gc
import json
import select
import sys
import time

import pjsua2 as pj

PACE = 0.02
TONES = {"call": 440, "answer": 880}  # Hz: each end's voice, told apart in a capture


def peer_config(max_calls: int | None = 512) -> pj.EpConfig:
    """Library settings of every user agent the tests and benchmarks run against the appliance:
    polled from the thread that created it, and the media set-up below."""
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    if max_calls is not None:  # None: the library's own limit
        cfg.uaConfig.maxCalls = max_calls
    peer_media(cfg)
    return cfg


def pcmu_only(ep: pj.Endpoint) -> None:
    """Offer PCMU alone, as the appliance's trunks and phones do in the tests."""
    for c in ep.codecEnum2():
        ep.codecSetPriority(c.codecId, 254 if c.codecId.startswith("PCMU/") else 0)


def peer_media(cfg: pj.EpConfig) -> None:
    """Media settings of every user agent the tests and benchmarks run against the appliance."""
    m = cfg.medConfig
    m.clockRate = m.sndClockRate = 8000
    m.noVad = True
    m.ecTailLen = 0
    # As in the engine: closing the idle sound device stalls the poll for
    # about 17 ms, which would be timed as the next call's delay.
    m.sndAutoCloseTime = -1
    # RTP read on the poll thread, as in the engine (core.py): a media worker
    # thread could be inside a call's RTP callback while a hang-up destroys
    # its transport (pj_sockaddr_get_addr assertion, the process aborts).
    m.hasIoqueue = False
    m.threadCnt = 0


def endpoint(port: int) -> pj.Endpoint:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = peer_config()
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    t = pj.TransportConfig()
    t.port = port
    t.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, t)
    ep.audDevManager().setNullDev()
    ep.libStart()
    pcmu_only(ep)
    return ep


def tone(freq: int) -> pj.ToneGenerator:
    """A steady tone in the conference bridge: what this end says on every call."""
    gen = pj.ToneGenerator()
    gen.createToneGenerator()
    desc = pj.ToneDesc()
    desc.freq1, desc.freq2, desc.on_msec, desc.off_msec, desc.volume = freq, 0, 1000, 0, 0
    tones = pj.ToneDescVector()
    tones.append(desc)
    gen.play(tones, True)
    return gen


class Call(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID, voice: pj.ToneGenerator | None = None):
        super().__init__(acc, call_id)
        self.state = "new"
        self.sent = 0.0
        self.ringing = 0.0
        self.hung = False
        self.voice = voice

    def onCallState(self, prm):
        try:
            st = self.getInfo().state
            if st == pj.PJSIP_INV_STATE_EARLY and not self.ringing:
                self.ringing = time.monotonic()
            elif st == pj.PJSIP_INV_STATE_CONFIRMED:
                self.state = "confirmed"
            elif st == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.state = "disconnected"
        except Exception as e:  # noqa: BLE001 - never into SWIG
            print(f"callback error {e}", file=sys.stderr, flush=True)

    def onCallMediaState(self, prm):
        """Talk as soon as there is media.  Silence would be sent too (VAD is off), but a tone
        makes the bridge carry sound, as a conversation does."""
        try:
            if self.voice is not None:
                self.voice.startTransmit(self.getAudioMedia(-1))
        except pj.Error:
            pass  # no audio (yet, or any more): nothing to say
        except Exception as e:  # noqa: BLE001 - never into SWIG
            print(f"callback error {e}", file=sys.stderr, flush=True)


def stream_stat(call: pj.Call):
    """pjsua2's RTCP statistics of the call's audio stream (pj.RtcpStat), None when it has none."""
    try:
        return call.getStreamStat(0).rtcp
    except pj.Error:
        return None


def rtp_figures(stats: list) -> dict:
    """Streams' RTCP statistics summed: what was sent, and what was received, lost and with what
    jitter (RFC 3550's interarrival jitter, which pjmedia updates on every packet; the mean is
    weighted by the packets behind it)."""
    out = {"streams": len(stats), "sent": 0, "received": 0, "lost": 0, "jitter_mean_ms": 0.0, "jitter_max_ms": 0.0}
    weighted = samples = 0
    for st in stats:
        rx, jitter = st.rxStat, st.rxStat.jitterUsec
        out["sent"] += st.txStat.pkt
        out["received"] += rx.pkt
        out["lost"] += rx.loss
        if jitter.n > 0:
            weighted += jitter.mean * jitter.n
            samples += jitter.n
            out["jitter_max_ms"] = max(out["jitter_max_ms"], jitter.max / 1000)
    out["jitter_mean_ms"] = round(weighted / samples / 1000, 3) if samples else 0.0
    return out


def media(calls: list[Call]) -> dict:
    """This end's RTP on its confirmed calls, summed (rtp_figures)."""
    stats = [stream_stat(c) for c in calls if c.state == "confirmed"]
    return rtp_figures([st for st in stats if st is not None])


class Answerer(pj.Account):
    def __init__(self, voice: pj.ToneGenerator | None = None):
        super().__init__()
        self.calls = []
        self.voice = voice

    def onIncomingCall(self, prm):
        try:
            call = Call(self, prm.callId, self.voice)
            self.calls.append(call)
            op = pj.CallOpParam()
            op.statusCode = 180
            call.answer(op)
            op = pj.CallOpParam()
            op.statusCode = 200
            call.answer(op)
        except Exception as e:  # noqa: BLE001
            print(f"callback error {e}", file=sys.stderr, flush=True)


def answer(port: int) -> None:
    ep = endpoint(port)
    acc = Answerer(tone(TONES["answer"]))
    cfg = pj.AccountConfig()
    cfg.idUri = f"sip:bench@127.0.0.1:{port}"
    cfg.mediaConfig.transportConfig.port = 30000
    acc.create(cfg)
    print("ready", flush=True)
    while True:
        ep.libHandleEvents(5)
        acc.calls = [c for c in acc.calls if c.state != "disconnected"]
        if select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line:
                break
            if line.strip() == "hangup":  # the phone's side hangs up every call it has
                ep.hangupAllCalls()
            elif line.strip() == "media":
                print(json.dumps({"media": media(acc.calls)}), flush=True)
    ep.hangupAllCalls()
    end = time.monotonic() + 1
    while time.monotonic() < end:
        ep.libHandleEvents(5)
    acc.calls.clear()
    acc.voice = None  # the tone is a pj object: gone before libDestroy
    gc.collect()
    acc.shutdown()
    ep.libDestroy()


def pump(ep: pj.Endpoint, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ep.libHandleEvents(5)


def pump_until_line(ep: pj.Endpoint) -> str:
    """Keep the calls going until a line comes on stdin (its text, "" at its end)."""
    while not select.select([sys.stdin], [], [], 0)[0]:
        ep.libHandleEvents(5)
    return sys.stdin.readline().strip()


def call(port: int, uri: str, direct: str = "") -> None:
    ep = endpoint(port)
    acc = pj.Account()
    cfg = pj.AccountConfig()
    cfg.idUri = f"sip:+380501234567@127.0.0.1:{port}"
    cfg.mediaConfig.transportConfig.port = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    acc.create(cfg)
    voice = tone(TONES["call"])
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        n, hold, *options = line.split()
        print(json.dumps(one_round(ep, acc, uri, int(n), float(hold), direct, voice, set(options))), flush=True)
    # Every Call object must be gone before libDestroy: one freed afterwards
    # aborts the process (pjsua_call_set_user_data asserts on its stale id).
    voice = None
    gc.collect()
    acc.shutdown()
    ep.libDestroy()


def place(acc: pj.Account, uri: str, errors: list, voice: pj.ToneGenerator | None = None) -> Call | None:
    c = Call(acc, voice=voice)
    c.sent = time.monotonic()
    prm = pj.CallOpParam(True)
    # No m=text (pjsua2 offers it by default): hanging up a call with a text
    # stream joins a thread and held the poll for about 300 ms.
    prm.opt.audioCount, prm.opt.videoCount, prm.opt.textCount = 1, 0, 0
    try:
        c.makeCall(uri, prm)
        return c
    except pj.Error as e:
        errors.append(e.info())
        return None


def one_round(ep: pj.Endpoint, acc: pj.Account, uri: str, n: int, hold: float, direct: str = "",
              voice: pj.ToneGenerator | None = None, options: set[str] = frozenset()) -> dict:
    """Place n calls, hold them, hang them all up; the Call objects die with this frame."""
    calls, errors = [], []
    straight: list[Call] = []  # the direct calls, hung up once answered
    for _ in range(n):
        c = place(acc, uri, errors, voice)
        if c is not None:
            calls.append(c)
        if direct:
            pump(ep, PACE / 2)
            d = place(acc, direct, errors)
            if d is not None:
                straight.append(d)
            pump(ep, PACE / 2)
            hang_up_answered(straight)
        else:
            pump(ep, PACE)
    c = d = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(c.state == "new" for c in calls + straight):
        ep.libHandleEvents(5)
        hang_up_answered(straight)
    up = sum(1 for c in calls if c.state == "confirmed")
    print(json.dumps({"held": up}), flush=True)
    pump(ep, hold)
    still = sum(1 for c in calls if c.state == "confirmed")
    delays = [(c.ringing - c.sent) * 1000 for c in calls if c.ringing]  # in the order placed
    direct_delays = [(c.ringing - c.sent) * 1000 for c in straight if c.ringing]
    if "media" in options:
        print(json.dumps({"talked": media(calls)}), flush=True)
        pump_until_line(ep)
    if "paced" in options:
        hang_up_paced(ep, calls)
    ep.hangupAllCalls()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(c.state != "disconnected" for c in calls + straight):
        ep.libHandleEvents(5)
    left = sum(1 for c in calls if c.state != "disconnected")
    calls.clear()
    straight.clear()
    pump(ep, 0.5)
    return {"placed": n, "answered": up, "still_up": still, "delays_ms": delays, "direct_ms": direct_delays,
            "errors": errors[:3], "not_ended": left}


def hang_up_answered(straight: list[Call]) -> None:
    """The direct calls are timed to their 180 only: each ends once answered, also one answered
    after the last was placed (left up, the phone would count it among the engine's calls)."""
    for d in straight:
        if d.state == "confirmed" and not d.hung:
            d.hung = True
            d.hangup(pj.CallOpParam())


def hang_up_paced(ep: pj.Endpoint, calls: list[Call]) -> None:
    """One call ended every PACE, as they were placed."""
    for c in calls:
        if c.state == "confirmed":
            try:
                c.hangup(pj.CallOpParam())
            except pj.Error:
                pass  # it ended meanwhile
            pump(ep, PACE)


if __name__ == "__main__":
    if sys.argv[1] == "answer":
        answer(int(sys.argv[2]))
    else:
        call(int(sys.argv[2]), sys.argv[3], sys.argv[5] if len(sys.argv) > 5 else "")
