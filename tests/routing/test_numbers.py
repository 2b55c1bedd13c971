from appliance.routing.numbers import caller_matches, is_external, normalise, normalise_pattern


def test_ukrainian_forms_are_one_number():
    forms = ["0671234567", "380671234567", "+380671234567", "067 123-45-67", "(067) 123 45 67", "00380671234567"]
    assert {normalise(f) for f in forms} == {"+380671234567"}


def test_extensions_and_withheld_numbers():
    assert normalise("101") == "101"
    assert not is_external("101")
    assert is_external("0671234567")
    assert normalise("anonymous") == "" and normalise("") == ""
    assert normalise("+44 20 7946 0958") == "+442079460958"


def test_caller_patterns():
    p = normalise_pattern("067*")
    assert p == "+38067*"
    assert caller_matches(p, normalise("0671234567"))
    assert not caller_matches(p, normalise("0501234567"))
    x = normalise_pattern("044XXXXXXX")
    assert x == "+38044XXXXXXX"
    assert caller_matches(x, "+380441234567")
    assert not caller_matches(x, "+3804412345678")
    assert caller_matches(normalise_pattern("anonymous"), "")
    assert not caller_matches(normalise_pattern("anonymous"), "+380441234567")
