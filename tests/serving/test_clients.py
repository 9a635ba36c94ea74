"""The serving clients (`cma_tf/serving/clients.py`) against TF Serving's Predict path, emulated
in-process (`tf_serving_emulator.py`: the SavedModel loaded the TF Serving way — a TF1 session,
restore op + init op — behind a real gRPC server and a REST server with TF Serving's JSON rules).

What these tests can fail on in cma_tf: the request and body the clients build, the rows they
parse, the SavedModel's loading and answers in a session, the empty-batch error and the
per-item flags. The answers that TF Serving gives before the model runs (wrong dtype, unknown
input, signature, model or version, an empty REST `instances` list) are the emulator's copies
of TF Serving's messages: those tests check the clients' handling of them, not the model.
"""

import base64
import json
import os
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from cma_tf.serving import clients
from cma_tf.serving.module import EMPTY_BATCH_MESSAGE
from tests.serving.conftest import IMAGE_SIZE, TOP_K, encode, random_image
from tests.serving.tf_serving_emulator import Emulator, serve_grpc, serve_rest

MODEL = "tiny"
# The same graph run by a TF1 session and by `tf.saved_model.load`: equal up to float32 rounding.
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def emulator(image_export):
    emulator = Emulator(image_export, MODEL)
    yield emulator
    emulator.close()


@pytest.fixture(scope="module")
def grpc_address(emulator):
    server, address = serve_grpc(emulator)
    yield address
    server.stop(grace=None).wait()


@pytest.fixture(scope="module")
def rest_url(emulator):
    server, url = serve_rest(emulator)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def loaded(image_export):
    return tf.saved_model.load(image_export)


@pytest.fixture(scope="module")
def items():
    """A PNG, a JPEG and bytes that are no image."""
    rng = np.random.default_rng(7)
    return [encode(random_image(rng), "PNG"), encode(random_image(rng), "JPEG"), b"not an image"]


@pytest.fixture(scope="module")
def grpc_rows(grpc_address, items):
    return clients.response_rows(clients.grpc_predict(grpc_address, clients.predict_request(items, MODEL)))


def pixel_batch():
    return np.random.default_rng(3).integers(0, 256, [2, IMAGE_SIZE, IMAGE_SIZE, 3]).astype(np.float32)


def grpc_error(address, request):
    with pytest.raises(grpc.RpcError) as caught:
        clients.grpc_predict(address, request)
    return caught.value.code(), caught.value.details()


def rest_error(url, body, path=f"/v1/models/{MODEL}:predict"):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    return caught.value.code, json.loads(caught.value.read())["error"]


def assert_rows_equal(rows, expected, scores_exact=True):
    """Same flags, classes, labels; scores equal (as float32 when one side went through JSON)."""
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert (row["valid"], row["classes"], row["labels"]) == (want["valid"], want["classes"], want["labels"])
        if scores_exact:
            assert row["scores"] == want["scores"]
        else:  # JSON carries the shortest decimal of each float32
            np.testing.assert_array_equal(np.float32(row["scores"]), np.float32(want["scores"]))


def test_grpc_rows_equal_the_saved_model_signature(grpc_rows, loaded, items):
    """PNG + JPEG + junk through `predict_request` → real gRPC → `response_rows`: the loaded
    `serving_default` on the same bytes; the junk item is flagged with classes −1, labels ""."""
    want = loaded.signatures["serving_default"](images=tf.constant(items))
    assert [row["valid"] for row in grpc_rows] == [True, True, False]
    good = grpc_rows[:2]
    np.testing.assert_allclose([row["scores"] for row in good], want["top_k_scores"].numpy()[:2], atol=TOLERANCE)
    assert [row["classes"] for row in good] == want["top_k_classes"].numpy()[:2].tolist()
    assert [row["labels"] for row in good] == [[b.decode() for b in labels] for labels in want["top_k_labels"].numpy()[:2]]
    # The signature answers classes −1, labels "", scores 0 for it; the client's row is empty.
    assert want["top_k_classes"].numpy()[2].tolist() == [-1] * TOP_K
    assert grpc_rows[2] == {"valid": False, "classes": [], "labels": [], "scores": [], "predicted": []}
    assert all(row["scores"] == sorted(row["scores"], reverse=True) for row in grpc_rows)


def test_the_labels_are_the_vocabulary_names(grpc_rows, image_export):
    with open(os.path.join(image_export, "assets", "labels.txt")) as f:
        names = f.read().splitlines()
    for row in grpc_rows[:2]:
        assert row["labels"] == [names[c] for c in row["classes"]]
        assert all(row["labels"])


def test_grpc_response_echoes_the_model_spec_and_honours_output_filter(grpc_address, items, image_export):
    """An empty signature name is `serving_default`; the reply names the model, version and
    signature; `output_filter` returns only the outputs asked for."""
    response = clients.grpc_predict(grpc_address, clients.predict_request(items, MODEL, signature_name="", version=1))
    assert (response.model_spec.name, response.model_spec.version.value) == (MODEL, 1)
    assert response.model_spec.signature_name == "serving_default"
    assert set(response.outputs) == {"scores", "top_k_classes", "top_k_labels", "top_k_scores", "valid", "predicted", "predicted_labels"}
    with open(os.path.join(image_export, "assets", "labels.txt")) as f:
        num_classes = len(f.read().splitlines())
    assert tf.make_ndarray(response.outputs["scores"]).shape == (3, num_classes)
    request = clients.predict_request(items, MODEL)
    request.output_filter.append("top_k_labels")
    filtered = clients.grpc_predict(grpc_address, request)
    assert list(filtered.outputs) == ["top_k_labels"]
    labels = [tf.make_ndarray(reply.outputs["top_k_labels"]) for reply in (filtered, response)]
    np.testing.assert_array_equal(*labels)


def test_the_rest_body_has_the_documented_shape(items):
    body = clients.rest_request_body(items)
    assert list(body) == ["signature_name", "instances"] and body["signature_name"] == "serving_default"
    assert all(list(instance) == ["b64"] for instance in body["instances"])
    sent = json.loads(json.dumps(body))["instances"]
    assert [base64.b64decode(instance["b64"], validate=True) for instance in sent] == items


def test_rest_round_trip_equals_grpc(rest_url, grpc_rows, items):
    """`rest_request_body` → `rest_predict` → `rest_response_rows` gives the gRPC rows; the reply
    is TF Serving's row format: one object per item, strings as text, `valid` as JSON booleans."""
    reply = clients.rest_predict(rest_url, MODEL, clients.rest_request_body(items))
    assert set(reply) == {"predictions"} and len(reply["predictions"]) == 3
    first = reply["predictions"][0]
    assert set(first) == {"scores", "top_k_classes", "top_k_labels", "top_k_scores", "valid", "predicted", "predicted_labels"}
    assert first["valid"] is True and all(isinstance(label, str) for label in first["top_k_labels"])
    assert_rows_equal(clients.rest_response_rows(reply), grpc_rows, scores_exact=False)
    versioned = clients.rest_predict(rest_url, MODEL, clients.rest_request_body(items), version=1)
    assert_rows_equal(clients.rest_response_rows(versioned), grpc_rows, scores_exact=False)


def test_rest_takes_the_other_documented_forms(rest_url, grpc_rows, items):
    """Named-object instances and the columnar `inputs` (answered as columnar `outputs`) give the
    same results; a plain JSON string is an item too (here no image: flagged)."""
    encoded = [{"b64": base64.b64encode(item).decode()} for item in items]
    named = clients.rest_predict(rest_url, MODEL, {"instances": [{"images": value} for value in encoded]})
    assert_rows_equal(clients.rest_response_rows(named), grpc_rows, scores_exact=False)
    columns = clients.rest_predict(rest_url, MODEL, {"inputs": {"images": encoded}})["outputs"]
    rows = clients.rest_response_rows({"predictions": [dict(zip(columns, row)) for row in zip(*columns.values())]})
    assert_rows_equal(rows, grpc_rows, scores_exact=False)
    text = clients.rest_predict(rest_url, MODEL, {"instances": ["not an image"]})
    assert clients.rest_response_rows(text) == [grpc_rows[2]]


def test_an_empty_batch_is_an_invalid_argument(grpc_address, rest_url):
    """gRPC: the signature's own assert. REST: TF Serving refuses an empty `instances` list before
    the model (json_tensor.cc); an empty columnar `inputs` list reaches the assert."""
    code, message = grpc_error(grpc_address, clients.predict_request([], MODEL))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and EMPTY_BATCH_MESSAGE in message
    status, error = rest_error(rest_url, clients.rest_request_body([]))
    assert status == 400 and "No values in 'instances' array" in error
    status, error = rest_error(rest_url, {"signature_name": "serving_default", "inputs": []})
    assert status == 400 and EMPTY_BATCH_MESSAGE in error


def test_a_wrong_dtype_is_an_invalid_argument_naming_both_types(grpc_address, rest_url, items):
    request = clients.predict_request(items, MODEL)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros([3], np.float32)))
    code, message = grpc_error(grpc_address, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expects arg[0] to be string but float is provided" in message
    status, error = rest_error(rest_url, {"instances": [1.5, 2.5]})
    assert status == 400 and "is not of expected type: string" in error


def test_a_wrong_input_or_signature_name_is_refused(grpc_address, rest_url, items):
    code, message = grpc_error(grpc_address, clients.predict_request(items, MODEL, input_name="image"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input tensor alias not found in signature: image" in message and "{images}" in message
    code, message = grpc_error(grpc_address, clients.predict_request(items, MODEL, signature_name="nope"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and '"nope"' in message
    status, error = rest_error(rest_url, clients.rest_request_body(items, signature_name="nope"))
    assert status == 400 and 'Serving signature name: "nope" not found' in error
    with pytest.raises(ValueError, match='TF Serving answered HTTP 400: .*"nope" not found'):
        clients.rest_predict(rest_url, MODEL, clients.rest_request_body(items, signature_name="nope"))


def test_an_unknown_model_or_version_is_not_found(grpc_address, rest_url, items):
    code, message = grpc_error(grpc_address, clients.predict_request(items, "other"))
    assert code == grpc.StatusCode.NOT_FOUND and "Latest(other)" in message
    code, _ = grpc_error(grpc_address, clients.predict_request(items, MODEL, version=2))
    assert code == grpc.StatusCode.NOT_FOUND
    path = f"/v1/models/{MODEL}/versions/2:predict"
    status, error = rest_error(rest_url, clients.rest_request_body(items), path=path)
    assert status == 404 and f"Specific({MODEL}, 2)" in error


def test_predict_pixels_over_grpc_and_rest(grpc_address, rest_url, loaded):
    """The float signature: no `valid` output, so every row is valid; REST rows = gRPC rows."""
    pixels = pixel_batch()
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, "predict_pixels"
    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(pixels))
    response = clients.grpc_predict(grpc_address, request)
    assert "valid" not in response.outputs
    rows = clients.response_rows(response)
    assert [row["valid"] for row in rows] == [True, True]
    want = loaded.signatures["predict_pixels"](pixels=tf.constant(pixels))
    np.testing.assert_allclose([row["scores"] for row in rows], want["top_k_scores"].numpy(), atol=TOLERANCE)
    assert [row["classes"] for row in rows] == want["top_k_classes"].numpy().tolist()
    reply = clients.rest_predict(rest_url, MODEL, {"signature_name": "predict_pixels", "instances": pixels.tolist()})
    assert_rows_equal(clients.rest_response_rows(reply), rows, scores_exact=False)


@pytest.mark.parametrize("signature", ["serving_default", "predict_pixels"])
def test_the_session_path_agrees_with_tf_saved_model_load(emulator, loaded, items, signature):
    """TF Serving's way to load (TF1 session: restore op, then `__saved_model_init_op`, which
    fills the vocabulary table) and TF2's `tf.saved_model.load` give the same outputs."""
    name, value = ("images", items) if signature == "serving_default" else ("pixels", pixel_batch())
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, signature
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=tf.string if name == "images" else tf.float32))
    outputs = {key: tf.make_ndarray(proto) for key, proto in emulator.predict(request).outputs.items()}
    want = {key: tensor.numpy() for key, tensor in loaded.signatures[signature](**{name: tf.constant(value)}).items()}
    assert set(outputs) == set(want)
    for key, array in want.items():
        assert outputs[key].shape == array.shape, key
        if array.dtype.kind == "f":
            np.testing.assert_allclose(outputs[key], array, atol=TOLERANCE, err_msg=key)
        else:
            np.testing.assert_array_equal(outputs[key], array, err_msg=key)
    assert all(label for label in outputs["top_k_labels"][:2].ravel())
