"""Target portfolios: validation that reports every problem at once, exact Decimal parsing of CSV
and JSON, and the stored form."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from core.domain import ValidationError
from core.rebalance.targets import (
    NO_TARGETS,
    TargetError,
    TargetKind,
    TargetPortfolio,
    build_targets,
    load_targets,
    parse_targets,
)

KNOWN = frozenset({"AAPL", "MSFT", "TSLA", "GOOG", "NVDA"})


def problems_of(call, *args, **kwargs) -> list[str]:
    with pytest.raises(TargetError) as info:
        call(*args, **kwargs)
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# build_targets
# ---------------------------------------------------------------------------------------------


def test_build_weights_normalises_symbols_sorts_and_keeps_exact_decimals() -> None:
    t = build_targets({" msft ": "0.2", "aapl": 0.1, "Tsla": D("0.30")}, kind="weights")
    assert t.kind is TargetKind.WEIGHTS
    assert t.symbols == ("AAPL", "MSFT", "TSLA")
    assert list(t.values.items()) == [("AAPL", D("0.1")), ("MSFT", D("0.2")), ("TSLA", D("0.30"))]
    # 0.1 + 0.2 + 0.30 is exactly 0.6 in Decimal (in float it would be 0.6000000000000001)
    assert t.total == D("0.6")
    assert t.source == "api"


def test_values_are_read_only() -> None:
    t = build_targets({"AAPL": "0.1"}, kind=TargetKind.WEIGHTS)
    with pytest.raises(TypeError):
        t.values["AAPL"] = D(1)  # type: ignore[index]
    with pytest.raises(AttributeError):
        t.source = "x"  # type: ignore[misc]


def test_zero_weight_is_allowed_and_means_sell_all() -> None:
    t = build_targets({"AAPL": 0, "MSFT": "0.5"}, kind="weights")
    assert t.values["AAPL"] == 0
    assert t.total == D("0.5")


def test_weights_may_reach_the_leverage_limit_exactly() -> None:
    t = build_targets({"AAPL": "0.6", "MSFT": "0.4"}, kind="weights")
    assert t.total == 1


def test_weights_past_the_leverage_limit_are_refused_with_the_sum() -> None:
    assert problems_of(build_targets, {"AAPL": "0.7", "MSFT": "0.5"}, kind="weights") == [
        "weights sum to 1.20, above the leverage limit 1.00"
    ]
    # a sum that only differs in the 4th decimal is shown exactly, not rounded to the limit
    assert problems_of(build_targets, {"AAPL": "0.5", "MSFT": "0.5001"}, kind="weights") == [
        "weights sum to 1.0001, above the leverage limit 1.00"
    ]


def test_higher_leverage_limit_allows_more() -> None:
    t = build_targets({"AAPL": "0.7", "MSFT": "0.5"}, kind="weights", leverage_limit=D("1.5"))
    assert t.total == D("1.2")
    assert problems_of(build_targets, {"AAPL": 1}, kind="weights", leverage_limit=D(0)) == [
        "leverage limit must be above 0, got 0"
    ]


def test_scores_may_sum_to_anything() -> None:
    t = build_targets({"AAPL": 120, "MSFT": "130.5"}, kind="scores")
    assert t.kind is TargetKind.SCORES
    assert t.total == D("250.5")


def test_every_problem_is_reported_not_just_the_first() -> None:
    mapping = {
        "aapl": "0.7",
        "AAPL ": 0.1,
        "msft": "ten",
        "TSLA": float("nan"),
        "goog": "-0.1",
        "zzz": "0.4",
        "FOO": "inf",
    }
    problems = problems_of(build_targets, mapping, kind="weights", known_symbols=KNOWN)
    assert problems == [
        "weight of MSFT must be a number, got 'ten'",
        "weight of TSLA must be a finite number, got nan",
        "weight of GOOG must not be negative, got -0.1",
        "weight of FOO must be a finite number, got 'inf'",
        "duplicate symbol AAPL ('aapl', 'AAPL ')",
        "unknown symbols: FOO, ZZZ",
        # the valid weights: 0.7 (first AAPL) + 0.4 (ZZZ)
        "weights sum to 1.10, above the leverage limit 1.00",
    ]


def test_error_message_joins_the_problems_and_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        build_targets({"AAPL": -1, "MSFT": "x"}, kind="weights")
    assert isinstance(info.value, TargetError)
    assert str(info.value) == (
        "weight of AAPL must not be negative, got -1; weight of MSFT must be a number, got 'x'"
    )


def test_empty_input_is_refused() -> None:
    assert problems_of(build_targets, {}, kind="weights") == [NO_TARGETS]
    assert NO_TARGETS == "no targets given"


def test_single_unknown_symbol_and_known_symbols_compare_case_insensitively() -> None:
    assert problems_of(
        build_targets, {"aapl": "0.1", "qqq": "0.1"}, kind="weights", known_symbols=KNOWN
    ) == ["unknown symbol: QQQ"]
    t = build_targets({"aapl": "0.1"}, kind="weights", known_symbols=frozenset({"aapl"}))
    assert t.symbols == ("AAPL",)


def test_negative_scores_booleans_and_bad_symbols_are_refused() -> None:
    assert problems_of(build_targets, {"AAPL": -2}, kind="scores") == [
        "score of AAPL must not be negative, got -2"
    ]
    assert problems_of(build_targets, {"AAPL": True}, kind="scores") == [
        "score of AAPL must be a number, got a boolean"
    ]
    assert problems_of(build_targets, [("  ", 1), (7, 1)], kind="scores") == [
        "empty symbol",
        "symbol must be text, got 7",
    ]


def test_floats_are_read_through_their_repr_not_their_binary_value() -> None:
    t = build_targets({"AAPL": 0.1}, kind="weights")
    assert t.values["AAPL"] == D("0.1")


def test_unknown_kind_is_refused() -> None:
    assert problems_of(build_targets, {"AAPL": 1}, kind="ranks") == [
        "unknown target kind 'ranks'; use weights or scores"
    ]


def test_round_trip_through_json_text() -> None:
    t = build_targets({"msft": "0.25", "aapl": "0.1"}, kind="weights", source="strategy:momo")
    data = t.to_dict()
    assert data == {
        "kind": "weights",
        "source": "strategy:momo",
        "values": {"AAPL": "0.1", "MSFT": "0.25"},
    }
    back = TargetPortfolio.from_dict(json.loads(json.dumps(data)))
    assert back == t
    assert hash(back) == hash(t)
    assert back.values["MSFT"] == D("0.25")


def test_from_dict_keeps_a_portfolio_built_under_a_higher_leverage_limit() -> None:
    t = build_targets({"AAPL": "0.9", "MSFT": "0.6"}, kind="weights", leverage_limit=D(2))
    assert TargetPortfolio.from_dict(t.to_dict()).total == D("1.5")


def test_from_dict_refuses_malformed_data() -> None:
    assert problems_of(TargetPortfolio.from_dict, {"kind": "weights"}) == [
        "a target portfolio needs kind and values"
    ]
    assert problems_of(TargetPortfolio.from_dict, {"kind": "weights", "values": {}, "x": 1}) == [
        "unexpected target portfolio fields: x"
    ]
    assert problems_of(
        TargetPortfolio.from_dict, {"kind": "weights", "values": {"AAPL": "-1"}}
    ) == ["weight of AAPL must not be negative, got -1"]


def test_constructor_normalises_and_checks_the_basics() -> None:
    t = TargetPortfolio(kind="scores", values={"msft": "2", "aapl": 1}, source="api")  # type: ignore[arg-type]
    assert t.kind is TargetKind.SCORES
    assert dict(t.values) == {"AAPL": D(1), "MSFT": D(2)}
    assert problems_of(TargetPortfolio, TargetKind.WEIGHTS, {}) == [NO_TARGETS]
    assert problems_of(TargetPortfolio, TargetKind.WEIGHTS, {"A": 1}, " ") == [
        "source must be a non-empty string, got ' '"
    ]


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def test_csv_with_weight_header_any_case_and_blank_lines() -> None:
    text = "Symbol , WEIGHT\n\naapl,0.10\n  \nmsft, 0.2\n\n"
    t = parse_targets(text, "csv")
    assert t.kind is TargetKind.WEIGHTS
    assert dict(t.values) == {"AAPL": D("0.10"), "MSFT": D("0.2")}
    assert t.total == D("0.30")


def test_csv_score_column_makes_scores_and_column_order_is_free() -> None:
    t = parse_targets("score,symbol\n1.5,aapl\n250,msft\n", "CSV")
    assert t.kind is TargetKind.SCORES
    assert dict(t.values) == {"AAPL": D("1.5"), "MSFT": D(250)}


def test_csv_numbers_are_exact() -> None:
    t = parse_targets("symbol,weight\nAAPL,0.1000000000000000000001\n", "csv")
    assert t.values["AAPL"] == D("0.1000000000000000000001")


def test_csv_problems_name_their_line_in_file_order() -> None:
    text = "symbol,weight\naapl,abc\n\nmsft,0.2,3\nAAPL,0.1\nnvda,\n"
    assert problems_of(parse_targets, text, "csv") == [
        "line 2: weight of AAPL must be a number, got 'abc'",
        "line 4: expected 2 fields (symbol and weight), got 3",
        "line 6: weight of NVDA must be a number, got ''",
        "duplicate symbol AAPL (line 2, line 5)",
    ]


def test_csv_bad_header_empty_text_and_header_only() -> None:
    assert problems_of(parse_targets, "\nticker,weight\nAAPL,1\n", "csv") == [
        "line 2: the header must be 'symbol,weight' or 'symbol,score', got 'ticker,weight'"
    ]
    assert problems_of(parse_targets, "symbol,weight,score\n", "csv") == [
        "line 1: the header must be 'symbol,weight' or 'symbol,score', got 'symbol,weight,score'"
    ]
    assert problems_of(parse_targets, "\n \n", "csv") == [NO_TARGETS]
    assert problems_of(parse_targets, "symbol,weight\n", "csv") == [NO_TARGETS]


def test_csv_checks_known_symbols_and_leverage() -> None:
    text = "symbol,weight\nAAPL,0.8\nQQQ,0.3\n"
    assert problems_of(parse_targets, text, "csv", known_symbols=KNOWN) == [
        "unknown symbol: QQQ",
        "weights sum to 1.10, above the leverage limit 1.00",
    ]


def test_csv_kind_that_disagrees_with_the_requested_kind() -> None:
    assert problems_of(parse_targets, "symbol,score\nAAPL,5\n", "csv", kind="weights") == [
        "the targets are scores but weights were expected"
    ]


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def test_json_plain_mapping_defaults_to_weights_with_exact_numbers() -> None:
    t = parse_targets('{"aapl": 0.1, "MSFT": 0.2, "TSLA": 0}', "json")
    assert t.kind is TargetKind.WEIGHTS
    assert dict(t.values) == {"AAPL": D("0.1"), "MSFT": D("0.2"), "TSLA": D(0)}
    assert t.total == D("0.3")


def test_json_plain_mapping_takes_kind_from_the_argument() -> None:
    t = parse_targets('{"AAPL": 3, "MSFT": 7.5}', "json", kind="scores")
    assert t.kind is TargetKind.SCORES
    assert t.total == D("10.5")


def test_json_wrapped_forms() -> None:
    w = parse_targets('{"weights": {"AAPL": 0.25}}', "json")
    assert (w.kind, dict(w.values)) == (TargetKind.WEIGHTS, {"AAPL": D("0.25")})
    s = parse_targets('{"Scores": {"AAPL": 1.5, "msft": 2}}', "json")
    assert (s.kind, dict(s.values)) == (TargetKind.SCORES, {"AAPL": D("1.5"), "MSFT": D(2)})
    assert problems_of(parse_targets, '{"scores": {"AAPL": 1}}', "json", kind="weights") == [
        "the targets are scores but weights were expected"
    ]


def test_json_list_of_rows() -> None:
    text = '[{"symbol": "aapl", "weight": 0.4}, {"Symbol": "MSFT", "Weight": "0.35"}]'
    t = parse_targets(text, "json")
    assert (t.kind, dict(t.values)) == (
        TargetKind.WEIGHTS,
        {"AAPL": D("0.4"), "MSFT": D("0.35")},
    )
    t = parse_targets('[{"symbol": "AAPL", "score": 9}]', "json")
    assert t.kind is TargetKind.SCORES


def test_json_list_problems_name_their_item() -> None:
    text = (
        '[{"symbol": "AAPL", "weight": 0.1}, {"symbol": "MSFT", "score": 1}, 5,'
        ' {"symbol": "TSLA"}, {"symbol": "NVDA", "weight": -0.1}]'
    )
    assert problems_of(parse_targets, text, "json") == [
        "item 2: gives a score but earlier items give a weight",
        "item 3: expected an object with symbol and weight or score",
        "item 4: expected fields symbol and weight or score, got symbol",
        "item 5: weight of NVDA must not be negative, got -0.1",
    ]
    assert problems_of(parse_targets, "[1]", "json") == [
        "item 1: expected an object with symbol and weight or score"
    ]
    assert problems_of(parse_targets, "[]", "json") == [NO_TARGETS]


def test_json_non_numbers_nan_and_infinity() -> None:
    text = '{"A": NaN, "B": Infinity, "C": null, "D": {"x": 1}, "E": true, "F": [1]}'
    assert problems_of(parse_targets, text, "json") == [
        "weight of A must be a finite number, got NaN",
        "weight of B must be a finite number, got Infinity",
        "weight of C must be a number, got nothing",
        "weight of D must be a number, got an object",
        "weight of E must be a number, got a boolean",
        "weight of F must be a number, got a list",
    ]


def test_json_repeated_keys_are_duplicates_not_silently_overwritten() -> None:
    assert problems_of(parse_targets, '{"AAPL": 0.1, "aapl": 0.2}', "json") == [
        "duplicate symbol AAPL ('AAPL', 'aapl')"
    ]


def test_malformed_json_reports_the_parser_message() -> None:
    problems = problems_of(parse_targets, '{"AAPL": 0.1', "json")
    assert problems == ["invalid JSON: Expecting ',' delimiter: line 1 column 13 (char 12)"]
    assert problems_of(parse_targets, "3", "json") == [
        "JSON targets must be an object or a list, got a number"
    ]
    assert problems_of(parse_targets, "{}", "json") == [NO_TARGETS]


def test_json_accepts_the_stored_form() -> None:
    t = build_targets({"AAPL": "0.5"}, kind="scores", source="x")
    back = parse_targets(json.dumps(t.to_dict()), "json")
    assert (back.kind, dict(back.values)) == (TargetKind.SCORES, {"AAPL": D("0.5")})


def test_unknown_format_is_refused() -> None:
    assert problems_of(parse_targets, "AAPL: 1", "yaml") == [
        "unknown targets format 'yaml'; use csv or json"
    ]


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def test_load_targets_picks_the_format_from_the_extension(tmp_path) -> None:
    csv_file = tmp_path / "model.CSV"
    # a spreadsheet's byte-order mark must not end up in the header
    csv_file.write_text("\ufeffsymbol,weight\nAAPL,0.2\n", encoding="utf-8")
    t = load_targets(csv_file, known_symbols=KNOWN)
    assert (t.kind, dict(t.values), t.source) == (
        TargetKind.WEIGHTS,
        {"AAPL": D("0.2")},
        "file:model.CSV",
    )
    json_file = tmp_path / "scores.json"
    json_file.write_text('{"scores": {"MSFT": 4}}', encoding="utf-8")
    t = load_targets(json_file, source="upload")
    assert (t.kind, t.total, t.source) == (TargetKind.SCORES, D(4), "upload")


def test_load_targets_refuses_other_extensions_and_missing_files(tmp_path) -> None:
    other = tmp_path / "targets.txt"
    other.write_text("symbol,weight\nAAPL,1\n", encoding="utf-8")
    assert problems_of(load_targets, other) == [
        "cannot tell the format of targets.txt: use a .csv or .json file"
    ]
    problems = problems_of(load_targets, tmp_path / "missing.csv")
    assert len(problems) == 1 and problems[0].startswith("cannot read ")
