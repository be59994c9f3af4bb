"""Fault commands without a server: decoding and validation, the CLI spec, and every malformed variant."""

from __future__ import annotations

import json

import msgspec
import pytest

from hft.sim.config import SimConfig
from hft.sim.faults import (
    FAULT_KINDS,
    MALFORMED_VARIANTS,
    DropConnection,
    FaultError,
    Malformed,
    RestError,
    ScheduledFault,
    SkipUpdates,
    SlowRest,
    StaleSnapshot,
    Stall,
    corrupt,
    decode_fault,
    fault_from_params,
    fault_from_spec,
    fault_to_dict,
)
from hft.sim.model import OrderFlowModel
from tests.unit.sim._client import malformed_reason

SYMBOLS = {"BTCUSDT", "ETHUSDT"}


def _frames() -> dict[str, bytes]:
    """One real frame of each kind, from the model."""
    model = OrderFlowModel(SimConfig(seed=4))
    found: dict[str, bytes] = {}
    while len(found) < 3:
        for stream, frame in model.advance_streams(50_000_000):
            found.setdefault(stream.split("@", 1)[1].split("@")[0], frame)
    return found


FRAMES = _frames()


def test_every_kind_then_json_round_trip_is_identity() -> None:
    faults = [
        DropConnection(mode="close", client=3),
        SkipUpdates(symbol="BTCUSDT", frames=2),
        Malformed(count=4, variant="truncated"),
        StaleSnapshot(requests=2, age_ms=1500),
        Stall(ms=300),
        SlowRest(ms=500, requests=1),
        RestError(status=429, requests=2, retry_after_s=3),
    ]
    assert [fault_to_dict(f)["kind"] for f in faults] == list(FAULT_KINDS)
    for fault in faults:
        assert decode_fault(json.dumps(fault_to_dict(fault))) == fault


def test_query_parameters_as_text_then_converted_to_ints() -> None:
    fault = fault_from_params({"kind": "skip_updates", "symbol": "ETHUSDT", "frames": "3", "client": "2"})
    assert fault == SkipUpdates(symbol="ETHUSDT", frames=3, client=2)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"kind": "stall", "ms": "0"}, "ms must be an int in 1..60000"),
        ({"kind": "slow_rest", "ms": "20000"}, "ms must be an int in 1..9000"),
        ({"kind": "skip_updates", "symbol": "btcusdt"}, "upper-case symbol"),
        ({"kind": "malformed", "huge_bytes": "10"}, "huge_bytes"),
        ({"kind": "drop_connection", "mode": "explode"}, "mode"),
        ({"kind": "stale_snapshot", "age_ms": "999999"}, "age_ms"),
        ({"kind": "drop_connection", "client": "0"}, "client"),
    ],
)
def test_out_of_range_value_then_fault_error_names_the_field(params: dict[str, str], fragment: str) -> None:
    with pytest.raises(FaultError, match=fragment):
        fault_from_params(params)


def test_direct_construction_then_validated_too() -> None:
    with pytest.raises(FaultError, match="frames"):
        SkipUpdates(frames=0)


def test_cli_spec_then_scheduled_fault() -> None:
    assert fault_from_spec("2.5:stall,ms=300") == ScheduledFault(at_s=2.5, fault=Stall(ms=300))
    assert fault_from_spec("4:drop_connection").fault == DropConnection()
    for bad in ("stall", "x:stall,ms=1", "1:stall,ms", "-1:stall,ms=1"):
        with pytest.raises(FaultError):
            fault_from_spec(bad)


def test_scheduled_faults_in_config_json_then_decoded_and_symbol_checked() -> None:
    raw = b'{"faults":[{"at_s":1,"fault":{"kind":"skip_updates","symbol":"ETHUSDT"}}]}'
    config = msgspec.json.decode(raw, type=SimConfig)
    assert config.faults == [ScheduledFault(at_s=1.0, fault=SkipUpdates(symbol="ETHUSDT"))]
    with pytest.raises(msgspec.ValidationError, match="not configured"):
        msgspec.json.decode(raw.replace(b"ETHUSDT", b"SOLUSDT"), type=SimConfig)
    with pytest.raises(msgspec.ValidationError, match="kind"):
        msgspec.json.decode(b'{"faults":[{"at_s":1,"fault":{"kind":"meteor"}}]}', type=SimConfig)


def test_mixed_variant_then_cycles_every_variant_in_order() -> None:
    fault = Malformed(count=10)
    assert [fault.variant_at(i) for i in range(len(MALFORMED_VARIANTS) + 1)] == [
        *MALFORMED_VARIANTS,
        MALFORMED_VARIANTS[0],
    ]


@pytest.mark.parametrize("kind", ["depth", "trade", "bookTicker"])
@pytest.mark.parametrize("variant", MALFORMED_VARIANTS)
def test_corrupt_variant_then_strict_client_rejects_and_original_passes(kind: str, variant: str) -> None:
    frame = FRAMES[kind]
    assert malformed_reason(frame, SYMBOLS) is None
    bad = corrupt(frame, variant)
    bad.decode("utf-8")  # still a valid text frame
    assert malformed_reason(bad, SYMBOLS) is not None


def test_corrupt_variants_then_the_documented_change() -> None:
    frame = FRAMES["depth"]
    data = json.loads(frame)["data"]
    price, size = (data["b"] or data["a"])[0]
    assert corrupt(frame, "number_price").count(f"[{price},".encode()) == 1
    assert b'["nan","' in corrupt(frame, "nan_price")
    assert b"[NaN," in corrupt(frame, "nan_token")
    assert f'"{price}","-{size}"'.encode() in corrupt(frame, "negative_size")
    renamed = json.loads(corrupt(frame, "unknown_symbol", unknown_symbol="ZZZUSDT"))
    assert renamed["stream"].startswith("zzzusdt@depth") and renamed["data"]["s"] == "ZZZUSDT"
    huge = corrupt(frame, "huge", huge_bytes=1_500_000)
    assert len(huge) == 1_500_000 and json.loads(huge)["data"]["U"] == data["U"]
    assert len(corrupt(frame, "truncated")) == len(frame) // 2


def test_corrupt_raw_payload_then_same_variants_apply() -> None:
    frame = FRAMES["trade"]
    raw = frame[frame.index(b'"data":') + 7 : -1]
    assert json.loads(corrupt(raw, "unknown_symbol"))["s"] == "ZZZUSDT"
    assert isinstance(json.loads(corrupt(raw, "number_price"))["p"], float)
    assert len(corrupt(raw, "huge", huge_bytes=4096)) == 4096


def test_outlier_variants_then_valid_frames_with_values_no_venue_sends() -> None:
    depth = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723075200100,"s":"BTCUSDT","U":1,'
             b'"u":2,"b":[["60000.00","0.00000000"],["59999.99","1.50000000"]],"a":[["60000.01","2.00000000"]]}}')
    far = json.loads(corrupt(depth, "far_price"))["data"]
    assert far["b"] == [["60000.00", "0.00000000"], ["99999999999.99", "1.50000000"]]  # not the removal
    ticker = (b'{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"60000.00","B":"1.0",'
              b'"a":"60000.01","A":"2.0"}}')
    crossed = json.loads(corrupt(ticker, "crossed"))["data"]
    assert (crossed["b"], crossed["a"]) == ("60000.01", "60000.00")
    assert json.loads(corrupt(ticker, "huge_size"))["data"]["B"] == "60000.00000000"
    trade = FRAMES["trade"]
    assert json.loads(corrupt(trade, "future_time"))["data"]["E"] == 7_258_118_400_000
    assert json.loads(corrupt(trade, "far_price"))["data"]["p"] == "99999999999.99"


def test_crossed_variant_without_the_ticker_channel_then_refused() -> None:
    with pytest.raises(FaultError, match="bookTicker"):
        decode_fault(json.dumps({"kind": "malformed", "variant": "crossed"}))
