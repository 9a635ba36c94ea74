"""Clients of an exported model behind TF Serving: the gRPC `PredictRequest` and the REST body.

gRPC (port 8500; needs `tensorflow-serving-api`, installed `--no-deps` beside TensorFlow):

    request = predict_request([open("cat.jpg", "rb").read()], model_name="cma")
    response = grpc_predict("localhost:8500", request)
    rows = response_rows(response)        # [{"valid": True, "labels": [...], "scores": [...], "classes": [...]}, ...]
                                          # an item that did not decode: valid False, empty lists

REST (port 8501, `POST /v1/models/<name>:predict`, bytes as `{"b64": ...}`):

    body = rest_request_body([image_bytes])
    rows = rest_response_rows(rest_predict("http://localhost:8501", "cma", body))

Video models take serialized YouTube-8M records the same way (`input_name="sequence_examples"`
or `"examples"`). Both formats carry the `serving_default` signature's outputs
(`cma_tf/serving/module.py`).
"""

import base64
import json
import urllib.error
import urllib.request
from typing import Optional, Sequence

from cma_tf.serving.module import DEFAULT_SIGNATURE
from cma_tf.serving.predictions import rows_of
from cma_tf.data.requests import IMAGES

DEFAULT_INPUT = IMAGES


def predict_request(
    items: Sequence[bytes], model_name: str, signature_name: str = DEFAULT_SIGNATURE,
    input_name: str = DEFAULT_INPUT, version: Optional[int] = None,
):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` holding `items` as `tf.string [B]`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    items = [bytes(item) for item in items]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(items, dtype=tf.string, shape=[len(items)]))
    return request


def grpc_predict(server: str, request, timeout: float = 30.0):
    """Sends `request` to TF Serving's gRPC `PredictionService/Predict` at `host:port`."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)


def response_rows(response):
    """A `PredictResponse` → one dict per item: `valid`, top-k `classes`, `labels`, `scores`
    (empty lists for an item that did not decode)."""
    import tensorflow as tf

    return rows_of({key: tf.make_ndarray(proto) for key, proto in response.outputs.items()})


def rest_request_body(items: Sequence[bytes], signature_name: str = DEFAULT_SIGNATURE) -> dict:
    """The JSON body of TF Serving's REST predict API, row format, bytes base64-encoded."""
    return {
        "signature_name": signature_name,
        "instances": [{"b64": base64.b64encode(bytes(item)).decode("ascii")} for item in items],
    }


def rest_predict(base_url: str, model_name: str, body: dict, version: Optional[int] = None, timeout: float = 30.0):
    """POSTs `body` to `<base_url>/v1/models/<name>[/versions/<v>]:predict`; returns the JSON reply.
    An error reply (HTTP 4xx/5xx) raises ValueError with TF Serving's message."""
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "") + ":predict"
    request = urllib.request.Request(
        base_url.rstrip("/") + path, data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read().decode("utf-8"))
    except urllib.error.HTTPError as error:  # TF Serving's reason is in the body: {"error": ...}
        try:
            message = json.loads(error.read().decode("utf-8"))["error"]
        except (ValueError, KeyError):
            raise error from None
        raise ValueError(f"TF Serving answered HTTP {error.code}: {message}") from None


def rest_response_rows(reply: dict):
    """A REST reply (`{"predictions": [{output: value, ...}, ...]}`, row format) → one dict per item."""
    if "error" in reply:
        raise ValueError(f"TF Serving answered with an error: {reply['error']}")
    predictions = reply["predictions"]
    columns = {key: [row[key] for row in predictions] for key in predictions[0]} if predictions else {}
    return rows_of(columns) if columns else []
