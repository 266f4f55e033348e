"""Threads and resources are declared once, in the rule: every job's rule declares its threads,
mem_mb and runtime, and the workflow profile (profiles/default, which wins over the rule) sets
none of what a rule declares."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def rule_settings(text: str) -> dict[str, dict]:
    """{rule: {"threads": bool, "resources": {key, ...}, "shell": bool}} of a Snakefile's text."""
    rules, current, section = {}, None, None
    for line in text.splitlines():
        if m := re.match(r"rule (\w+):", line):
            current = rules[m[1]] = {"threads": False, "resources": set(), "shell": False}
        elif line and not line[0].isspace():
            current = None
        elif current is not None and (m := re.match(r" {4}(\w+):", line)):
            section = m[1]
            current["threads"] |= section == "threads"
            current["shell"] |= section in ("shell", "run", "script")
        elif current is not None and section == "resources" and (m := re.match(r" {8}(\w+)\s*=", line)):
            current["resources"].add(m[1])
    return rules


def _rules() -> dict[str, dict]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    return {k: v for f in files for k, v in rule_settings(f.read_text()).items()}


def duplicates(profile: dict, rules: dict[str, dict]) -> list[str]:
    """Settings of the profile that a rule declares too (the profile's would silently win)."""
    found = [f"set-threads: {r}" for r in profile.get("set-threads") or {} if rules.get(r, {}).get("threads")]
    for rule, resources in (profile.get("set-resources") or {}).items():
        found += [f"set-resources: {rule}.{k}" for k in resources if k in rules.get(rule, {}).get("resources", ())]
    return found


def test_every_job_declares_threads_and_resources_in_its_rule():
    jobs = {name: r for name, r in _rules().items() if r["shell"]}
    assert len(jobs) > 40
    missing = {name: r for name, r in jobs.items()
               if not (r["threads"] and {"mem_mb", "runtime"} <= r["resources"])}
    assert not missing


def test_the_profile_declares_nothing_a_rule_declares():
    profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert duplicates(profile, _rules()) == []


def test_a_duplicate_is_found():
    rules = rule_settings("rule a:\n    threads: 1\n    resources:\n        mem_mb=10,\n"
                          "        runtime=5,\n    shell:\n        'true'\n\nx = 1\n")
    assert rules == {"a": {"threads": True, "resources": {"mem_mb", "runtime"}, "shell": True}}
    profile = {"set-threads": {"a": 2}, "set-resources": {"a": {"runtime": 9, "gpu_model": "a100"}}}
    assert duplicates(profile, rules) == ["set-threads: a", "set-resources: a.runtime"]
    assert duplicates({"set-resources": {"a": {"gpu_model": "a100"}}}, rules) == []

