"""The config schema (`cma_tf/config_schema.py`): every numeric field's range in one place,
checked before any work starts (issue 35 §1.6, §2, §3; issue 37 §2), and fields a shipped
config leaves at None still overridable from the command line (issue 35 §5)."""

import math
import os
import re
import subprocess
import sys

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from cma_tf import factory
from cma_tf.config_base import get_base_config, load_config_file
from cma_tf.errors import ConfigError
from tests.test_cli import tiny_config, tiny_data  # noqa: F401 (fixture)
from tests.test_configs import CASES, CONFIG_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(CONFIG_DIR, "demo.py")

# Written from what each field means, independently of the schema: the numeric fields where 0
# is a valid setting (a seed, "none" of a weight, a rate or a margin, no encoder layer). Every
# other numeric field is a count, a size or a rate that must be positive. No numeric field
# takes -1. A new field that may be 0 is added here after checking what 0 does.
ZERO_ALLOWED = {
    "seed", "data.check_records",
    "model.encoder_layers", "model.transformer_dropout", "model.gcn_threshold", "model.gcn_reweight",
    "model.graph_loss_weight", "model.scale_loss_weight", "model.backbone_frozen_stages",
    "model.classifier_l2", "model.nextvlad_dropout", "model.batchnorm_momentum",
    "asge.momentum", "asge.alpha", "asge.row_guard",
    "train.momentum", "train.weight_decay", "train.warmup_epochs", "train.beta",
    "train.asl_gamma_pos", "train.asl_gamma_neg", "train.asl_clip", "train.backbone_lr_multiplier",
}


def leaves(config, prefix=""):
    """`(dotted field, value, declared type)` of every leaf of a ConfigDict; the declared type is
    the placeholder's (`FieldReference`) where there is one, else the value's."""
    for name in config.keys():
        value = config[name]
        field = f"{prefix}{name}"
        if isinstance(value, ml_collections.ConfigDict):
            yield from leaves(value, field + ".")
            continue
        reference = config._fields[name]
        declared = reference.get_type() if isinstance(reference, ml_collections.FieldReference) else type(value)
        yield field, value, declared


def is_number_type(kind):
    return kind in (int, float)


def numeric_fields(config):
    """`{field: declared type}` of the numeric leaves: ints and floats (not bools), placeholders of
    either, and tuples of ints."""
    found = {}
    for field, value, declared in leaves(config):
        if is_number_type(declared) or (isinstance(value, tuple) and value and all(type(v) is int for v in value)):
            found[field] = tuple if isinstance(value, tuple) else declared
    return found


def nullable_fields(config):
    """The fields declared as placeholders (`config_dict.placeholder`): None is their default."""
    return {field for field, value, declared in leaves(config) if value is None and declared is not type(None)}


def with_value(config, field, value):
    changed = config.copy_and_resolve_references()
    *sections, name = field.split(".")
    owner = changed
    for section in sections:
        owner = owner[section]
    owner[name] = value
    return changed


def refusal(config):
    """The `ConfigError` message `factory.validate_config` gives, or None."""
    try:
        factory.validate_config(config)
    except ConfigError as error:
        return str(error)
    return None


def shipped(path, variant):
    config = load_config_file(path).get_config(variant)
    if config.data.format == "tfds":
        config.data.tfds_name = config.data.tfds_name or "coco/2014"  # the kind's own check wants a name
    return config


def test_every_numeric_field_of_the_base_config_has_a_range():
    from cma_tf import config_schema

    missing = sorted(set(numeric_fields(get_base_config())) - set(config_schema.SCHEMA))
    assert not missing, f"numeric config fields without a range in cma_tf/config_schema.py: {missing}"


def test_the_schema_names_only_numeric_fields_of_the_base_config():
    from cma_tf import config_schema

    stale = sorted(set(config_schema.SCHEMA) - set(numeric_fields(get_base_config())))
    assert not stale, f"cma_tf/config_schema.py declares fields the base config does not have: {stale}"


@pytest.mark.parametrize("path,variant", CASES, ids=[f"{os.path.basename(p)}:{v}" for p, v in CASES])
def test_shipped_configs_are_in_range(path, variant):
    assert refusal(shipped(path, variant)) is None


# The cases the issues name, each with the value a new user tried.
NAMED_CASES = [
    ("demo.py", "train.batch_size", 0),
    ("demo.py", "train.batch_size", -4),
    ("demo.py", "data.image_size", 0),
    ("demo.py", "asge.units", 0),
    ("demo.py", "asge.steps", 0),
    ("demo.py", "train.eval_batch_size", 0),
    ("demo.py", "train.epochs", 0),
    ("demo.py", "train.epochs", -1),
    ("demo.py", "train.learning_rate", -0.01),
    ("demo.py", "train.learning_rate", float("nan")),
    ("yt8m_demo.py", "data.frames", 0),
    ("yt8m_demo.py", "data.max_frames", 0),
    ("yt8m_demo.py", "train.batch_size", 0),
]


@pytest.mark.parametrize("config_file,field,value", NAMED_CASES)
def test_the_settings_the_issues_name_are_refused_naming_the_field(config_file, field, value):
    config = with_value(shipped(os.path.join(CONFIG_DIR, config_file), "cma_snet" if "yt8m" in config_file else "cma"), field, value)
    with pytest.raises(ConfigError) as error:
        factory.validate_config(config)
    message = str(error.value)
    assert message.startswith(f"config.{field}={value!r}: must be "), message
    assert "\n" not in message


@pytest.mark.parametrize("backbone,size,rule", [
    ("small", 50, "a multiple of 16"), ("small", 8, "a multiple of 16"),
    ("convnext_small", 48, "a multiple of 32"), ("resnet101", 16, "at least 32"),
])
def test_an_image_side_the_backbone_cannot_build_is_refused(backbone, size, rule):
    """Beside the range (≥ 1): what each image backbone builds at (Keras' ResNet-101 refuses
    under 32; the small CNN and ConvNeXt divide the side by 16 and 32)."""
    config = with_value(with_value(shipped(DEMO, "cma"), "model.backbone", backbone), "data.image_size", size)
    with pytest.raises(ConfigError, match=rf"^config\.data\.image_size={size}: .*{rule}"):
        factory.validate_config(config)


def test_the_schema_follows_the_small_backbone():
    from cma_tf import config_schema
    from cma_tf.backbones.small import DEFAULT_WIDTHS
    from cma_tf.layers.residual import BottleneckBlock

    assert config_schema.BOTTLENECK_EXPANSION == BottleneckBlock.expansion
    assert config_schema.SMALL_BACKBONE_WIDTHS == len(DEFAULT_WIDTHS)


def probes(kind):
    """The out-of-the-ordinary values tried on a field of `kind`: 0 and -1, and NaN for floats."""
    if kind is tuple:
        return [(0,), (-1,)]  # set as the first element
    return [0, -1] + ([float("nan")] if kind is float else [])


def walk(path, variant):
    """`[(field, value, refused message or None, expected refused)]` for every numeric field of
    the config set to each of its probes."""
    config = shipped(path, variant)
    nullable = nullable_fields(get_base_config())
    results = []
    for field, kind in numeric_fields(config).items():
        values = probes(kind) + ([None] if field not in nullable else [])
        for value in values:
            if kind is tuple and value is not None:
                current = tuple(config[field.split(".")[0]][field.split(".")[1]])
                given = value[0]
                changed = with_value(config, field, (given,) + current[1:])
            else:
                given = value
                changed = with_value(config, field, value)
            expected = given is None or (isinstance(given, float) and math.isnan(given)) or given < 0 or (
                given == 0 and field not in ZERO_ALLOWED
            )
            results.append((field, given, refusal(changed), expected))
    return results


@pytest.mark.parametrize("path,variant", CASES, ids=[f"{os.path.basename(p)}:{v}" for p, v in CASES])
def test_every_numeric_field_of_every_shipped_config_is_checked(path, variant):
    """Each numeric field at 0 and -1 (NaN for floats, None where the field is not a
    placeholder): refused in one line naming the field where out of range; where 0 is valid, no
    refusal of that field."""
    wrong = []
    for field, value, message, expected in walk(path, variant):
        named = message is not None and message.startswith(f"config.{field}=")
        if expected and not (named and "\n" not in message):
            wrong.append(f"config.{field}={value!r} not refused naming the field (got {message!r})")
        if not expected and named:
            wrong.append(f"config.{field}={value!r} is valid but refused: {message}")
    assert not wrong, "\n".join(wrong)


def test_how_many_fields_the_walk_covers():
    fields = {(path, variant, field) for path, variant in CASES for field, *_ in walk(path, variant)}
    per_config = {len({f for p, v, f in fields if (p, v) == case}) for case in CASES}
    print(f"schema walk: {len(fields)} (config entry, field) pairs over {len(CASES)} config entries, "
          f"{sorted(per_config)} numeric fields each")
    assert per_config == {len(numeric_fields(get_base_config()))}  # every config has every numeric field


# --- Issue 35 §1.6: refused before anything is written --------------------------------------


def snapshot(folder):
    """Every file under `folder` with its bytes (None if the folder does not exist)."""
    if not os.path.exists(folder):
        return None
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(parent, name), "rb") as f:
                found[os.path.relpath(os.path.join(parent, name), folder)] = f.read()
    return found


@pytest.mark.parametrize("field,value", [("train.learning_rate", -0.01), ("train.epochs", 0), ("train.epochs", -1)])
def test_a_negative_learning_rate_or_no_epochs_is_refused_before_anything_is_written(tiny_data, tmp_path, field, value):
    from cma_tf.training.trainer import train_and_evaluate

    config = with_value(tiny_config("plain", tiny_data), field, value)
    fresh = str(tmp_path / "fresh")
    with pytest.raises(ConfigError, match=rf"^config\.{re.escape(field)}="):
        train_and_evaluate(config, fresh)
    assert not os.path.exists(fresh)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("kept")
    before, data_before = snapshot(str(existing)), snapshot(tiny_data)
    with pytest.raises(ConfigError, match=rf"^config\.{re.escape(field)}="):
        train_and_evaluate(config, str(existing))
    assert snapshot(str(existing)) == before
    assert snapshot(tiny_data) == data_before  # no label-graph cache written either


# --- Issue 35 §2: every loop bound a user sets; asge.steps=0 ran forever -------------------
# (the ASGE fit is one Keras epoch of `asge.steps` steps over a repeated dataset: 0 steps is
# "until the data ends", which it never does). The data folder is missing on purpose: the
# setting must be refused before the data is looked at.

LOOP_BOUNDS = ["asge.steps", "asge.depth", "train.epochs", "train.steps_per_epoch", "train.lr_decay_epochs",
               "model.cmt_layers", "model.blocks_per_scale", "model.decoder_layers"]


@pytest.mark.parametrize("field", LOOP_BOUNDS)
def test_train_refuses_a_zero_loop_bound_before_any_work(tmp_path, field):
    from cma_tf.training.trainer import train_and_evaluate

    config = with_value(tiny_config("plain", str(tmp_path / "no_data")), field, 0)
    with pytest.raises(ConfigError, match=rf"^config\.{re.escape(field)}=0: must be an integer ≥ 1"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# --- The command lines: exit 2, one line naming the field, nothing written -----------------


def run_module(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_naming(proc, field):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: config.{field}="), proc.stderr


@pytest.mark.parametrize(
    "field,value", [("train.batch_size", 0), pytest.param("asge.steps", 0, marks=pytest.mark.slow)]
)
def test_train_refuses_an_out_of_range_setting_before_creating_the_workdir(tmp_path, field, value):
    """asge.steps=0 ran forever (the ASGE fit's one epoch of `steps` steps over a repeated dataset)."""
    workdir = tmp_path / "run"
    proc = run_module(
        "cma_tf.train", f"--config={DEMO}:cma", f"--workdir={workdir}", f"--config.data.data_dir={tmp_path}/data",
        f"--config.{field}={value}",
    )
    assert_one_line_naming(proc, field)
    assert not workdir.exists()


# A subprocess: cma_tf.label_embeddings defines --config, as cma_tf.evaluate does, so the two
# cannot be imported into one test process.
def test_label_embeddings_command_refuses_zero_asge_steps(tmp_path):
    proc = run_module(
        "cma_tf.label_embeddings", f"--config={DEMO}:cma", f"--workdir={tmp_path}/run", f"--output={tmp_path}/E.npy",
        f"--config.data.data_dir={tmp_path}/data", "--config.asge.steps=0",
    )
    assert_one_line_naming(proc, "asge.steps")
    assert not (tmp_path / "run").exists() and not (tmp_path / "E.npy").exists()


@pytest.mark.slow  # the same check in-process: test_evaluate_overrides_are_held_to_the_schema
def test_evaluate_refuses_a_zero_eval_batch_size(tmp_path):
    proc = run_module(
        "cma_tf.evaluate", f"--workdirs={tmp_path}/run", f"--config={DEMO}:cma", "--config.train.eval_batch_size=0",
    )
    assert_one_line_naming(proc, "train.eval_batch_size")


def test_evaluate_overrides_are_held_to_the_schema(monkeypatch, capsys):
    """`evaluate` and `segment_inference` take only overrides (their workdir's config.json is the
    config): `cli.command_line_overrides` holds them to the schema, one line and exit 2."""
    from cma_tf import cli

    argv = ["cma_tf.evaluate", f"--config={DEMO}:cma", "--config.train.eval_batch_size=0"]
    values = flags.FlagValues()
    config_flag = config_flags.DEFINE_config_file("config", None, "the config", flag_values=values, sys_argv=argv)
    values(argv)
    monkeypatch.setattr(flags, "FLAGS", values)
    with pytest.raises(SystemExit) as exit_status:
        cli.command_line_overrides(config_flag)
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: config.train.eval_batch_size=0: must be an integer ≥ 1"
    ]


# --- Issue 35 §5: backbone_weights (and every None a config sets) overridable -------------


def parse_command_line(*args):
    """The config `--config=… --config.<field>=…` gives through the commands' own flag parser."""
    argv = ["cma_tf.train", *args]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "the config", flag_values=values, sys_argv=argv)
    values(argv)
    return values.config


def readme_backbone_weights_overrides():
    """The `--config.model.backbone_weights=…` arguments README.md shows."""
    with open(os.path.join(ROOT, "README.md")) as f:
        found = re.findall(r"--config\.model\.backbone_weights=[^\s`]+", f.read())
    assert found, "README.md no longer shows a backbone_weights override"
    return sorted(set(found))


@pytest.mark.parametrize("path,variant", CASES, ids=[f"{os.path.basename(p)}:{v}" for p, v in CASES])
def test_backbone_weights_is_overridable_on_every_shipped_config(path, variant):
    spec = f"{path}:{variant}"
    for override in readme_backbone_weights_overrides() + ["--config.model.backbone_weights=None"]:
        config = parse_command_line(f"--config={spec}", override)
        written = override.split("=", 1)[1]
        assert config.model.backbone_weights in ((written, None) if written == "None" else (written,))
    # and back from None to a weights name
    config = parse_command_line(f"--config={spec}", "--config.model.backbone_weights=None",
                                "--config.model.backbone_weights=imagenet")
    assert config.model.backbone_weights == "imagenet"


def test_the_readme_line_with_backbone_weights_parses_on_the_demo_config():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = " ".join(f.read().split())
    line = re.search(r"python -m cma_tf\.train (--config=configs/demo\.py:\w+ [^`]*?backbone_weights=[^`]*?) --workdir", text)
    assert line, "README.md's train line with backbone_weights not found"
    config = parse_command_line(*line.group(1).split())
    assert (config.model.backbone, config.model.backbone_weights, config.data.image_size) == ("resnet101", "imagenet", 448)


@pytest.mark.parametrize("path,variant", CASES, ids=[f"{os.path.basename(p)}:{v}" for p, v in CASES])
def test_every_field_a_shipped_config_leaves_at_none_can_be_overridden(path, variant):
    """A field a config sets to None keeps its declared type (a placeholder), so
    `--config.<field>=…` parses; a bare None loses it ("Type NoneType … not supported")."""
    config = load_config_file(path).get_config(variant)
    untyped = [field for field, value, declared in leaves(config) if value is None and declared is type(None)]
    assert not untyped, f"fields set to a bare None (not overridable from the command line): {untyped}"


NULLABLE_NUMBERS = sorted(
    field for field, kind in numeric_fields(get_base_config()).items() if field in nullable_fields(get_base_config())
)


@pytest.mark.parametrize("path,variant", CASES, ids=[f"{os.path.basename(p)}:{v}" for p, v in CASES])
def test_a_numeric_placeholder_can_be_set_back_to_none(path, variant):
    """`--config.train.lr_decay_examples=None` on a config that sets it (yt8m.py) is the way back
    to the default; the commands' flag parser (`cma_tf.cli` registers it) reads None for ints
    and floats, and the schema then refuses None where a field has no None."""
    from cma_tf import cli  # noqa: F401 (every command imports it before its flags are parsed)

    config = parse_command_line(f"--config={path}:{variant}", *[f"--config.{field}=None" for field in NULLABLE_NUMBERS])
    assert [field for field in NULLABLE_NUMBERS if config[field.split(".")[0]][field.split(".")[1]] is not None] == []
    config = parse_command_line(f"--config={path}:{variant}", "--config.train.batch_size=None")
    with pytest.raises(ConfigError, match=r"^config\.train\.batch_size=None: must be an integer ≥ 1$"):
        factory.validate_config(config)


def test_the_train_command_takes_backbone_weights_none_on_the_demo_config(tmp_path):
    """Through the real command: the overrides parse, and the run stops at the missing data."""
    proc = run_module(
        "cma_tf.train", f"--config={DEMO}:cma", f"--workdir={tmp_path}/run", f"--config.data.data_dir={tmp_path}/data",
        "--config.model.backbone_weights=None", "--config.model.feature_channels=None",
    )
    assert proc.returncode == 2, proc.stderr
    assert "Flags parsing error" not in proc.stderr and "NoneType" not in proc.stderr, proc.stderr
    assert str(tmp_path / "data") in proc.stderr
