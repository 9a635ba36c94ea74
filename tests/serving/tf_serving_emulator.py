"""TF Serving's Predict path, emulated in-process for the client tests (no server binary here).

`Emulator` does what TF Serving's SavedModelBundle + `predict_util.cc` (`RunPredict`) do:
  - load: `tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)` in its own
    graph, i.e. the variables' restore op and `__saved_model_init_op` (which fills the
    vocabulary table from the asset), no `tf.function` and no Python of the model;
  - predict: `model_spec.signature_name` ("" → "serving_default", unknown → FAILED_PRECONDITION
    `Serving signature key "x" not found.`), request inputs = signature inputs (else
    INVALID_ARGUMENT "input size does not match signature ... Sent extra: {..}. Missing but
    required: {..}." or "input tensor alias not found in signature"), each TensorProto →
    ndarray, a session run on the signature's output tensors (`output_filter` honoured), one
    TensorProto per output and `model_spec` echoed with the served version.
TF Serving's C++ `Session::Run` refuses a feed of the wrong dtype with INVALID_ARGUMENT
"Expects arg[0] to be string but float is provided" (`FunctionCallFrame::SetArgs`); Python's
`Session.run` converts feeds itself (a float under a string input fails there as INTERNAL
"Unsupported object type float"), so that check is made here. Errors are
`ServingError(grpc.StatusCode, message)`.

`serve_grpc` puts it behind a real gRPC `PredictionService`; `serve_rest` behind
`POST /v1/models/<name>[/versions/<v>]:predict` with the JSON rules of
https://www.tensorflow.org/tfx/serving/api_rest ("Predict API": request format — row
`instances` or columnar `inputs`, optional `signature_name`; response format — `predictions`
for rows, `outputs` for columns, an object per item when there are several outputs; "Encoding
binary values" — `{"b64": ...}`; "JSON mapping" — bool/string/number; errors as
`{"error": <message>}`) and the details of `tensorflow_serving/util/json_tensor.cc` (an empty
`instances` list is refused before the model, "No values in 'instances' array").
"""

import base64
import binascii
import concurrent.futures
import http.server
import json
import os
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

DEFAULT_SIGNATURE = "serving_default"
# TF Serving's `ToHTTPStatusCode` for the codes a Predict call can give; others → 500.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.UNIMPLEMENTED: 501,
}
STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code, self.message = code, message


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def type_name(dtype):
    """TensorFlow's C++ `DataTypeString`: float32 is "float", float64 "double"."""
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


def braces(names):
    return "{" + ",".join(sorted(names)) + "}"


class Emulator:
    """One servable: the SavedModel `<base>/<version>` served as model `name`."""

    def __init__(self, export_dir, name):
        self.name, self.version = name, int(os.path.basename(os.path.normpath(export_dir)))
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], export_dir)

    def signature(self, model_spec):
        """`(signature name, SignatureDef)` of a request; NOT_FOUND for another model or version."""
        versioned = model_spec.HasField("version")
        if model_spec.name != self.name or (versioned and model_spec.version.value != self.version):
            version = f", {model_spec.version.value}" if versioned else ""
            wanted = f"{'Specific' if versioned else 'Latest'}({model_spec.name}{version})"
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted}")
        name = model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in self.meta_graph.signature_def:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        return name, self.meta_graph.signature_def[name]

    def predict(self, request):
        """A `PredictRequest` → `PredictResponse`, as `RunPredict` (predict_util.cc)."""
        signature_name, signature = self.signature(request.model_spec)
        sent, expected = set(request.inputs), set(signature.inputs)
        if len(sent) != len(expected):
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(expected)} len({braces(sent)}) != "
                f"len({braces(expected)}). Sent extra: {braces(sent - expected)}. "
                f"Missing but required: {braces(expected - sent)}."
            )
        feeds = {}
        for index, alias in enumerate(sorted(sent)):
            if alias not in expected:
                raise invalid(
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {braces(expected)}."
                )
            info, proto = signature.inputs[alias], request.inputs[alias]
            wanted, given = tf.dtypes.as_dtype(info.dtype), tf.dtypes.as_dtype(proto.dtype)
            if wanted != given:
                raise invalid(f"Expects arg[{index}] to be {type_name(wanted)} but {type_name(given)} is provided")
            feeds[info.name] = tf.make_ndarray(proto)
        aliases = list(request.output_filter) or sorted(signature.outputs)
        for alias in aliases:
            if alias not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {braces(signature.outputs)}."
                )
        if len(set(aliases)) != len(aliases):
            raise invalid(f"duplicate output tensor alias: {aliases}")
        try:
            values = self.session.run([signature.outputs[alias].name for alias in aliases], feed_dict=feeds)
        except tf.errors.OpError as error:
            raise ServingError(STATUS_BY_NUMBER[error.error_code], error.message) from None
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = self.name, signature_name
        response.model_spec.version.value = self.version
        for alias, value in zip(aliases, values):
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    def close(self):
        self.session.close()


def serve_grpc(emulator):
    """A started gRPC server answering `PredictionService/Predict`; returns `(server, "localhost:port")`."""

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                return emulator.predict(request)
            except ServingError as error:
                context.abort(error.code, error.message)

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    return server, f"localhost:{port}"


def is_b64(value):
    return isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str)


def json_leaf(value, dtype):
    """One JSON value → one tensor element ("JSON mapping", "Encoding binary values")."""
    if dtype == tf.string and isinstance(value, str):
        return value.encode("utf-8")
    if dtype == tf.string and is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise invalid("Unable to base64 decode") from None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (
        (dtype.is_bool and isinstance(value, bool)) or (dtype.is_floating and number)
        or (dtype.is_integer and number and isinstance(value, int))
    ):
        return value
    kind = {bool: str(value), str: "String", dict: "Object", list: "Array", type(None): "Null"}
    kind = kind.get(type(value), "Number")
    raise invalid(f"JSON Value: {json.dumps(value)} Type: {kind} is not of expected type: {type_name(dtype)}")


def json_tensor(value, dtype):
    """A nested JSON list → ndarray; the shape is read along the first elements (json_tensor.cc)."""
    shape, first = [], value
    while isinstance(first, list):
        shape.append(len(first))
        first = first[0] if first else None
    flat = []

    def fill(item, level):
        if not isinstance(item, list):
            if level != len(shape):
                raise invalid(f"JSON Value: {json.dumps(item)} found at incorrect level: {level + 1} "
                              f"in the JSON DOM. Expected at level: {len(shape)}")
            flat.append(json_leaf(item, dtype))
        elif level >= len(shape):
            raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        elif len(item) != shape[level]:
            raise invalid(f"Encountered list at unexpected size: {len(item)} at level: {level} "
                          f"expected size: {shape[level]}")
        else:
            for element in item:
                fill(element, level + 1)

    fill(value, 0)
    return np.array(flat, dtype=object if dtype == tf.string else dtype.as_numpy_dtype).reshape(shape)


def json_value(array, alias):
    """An output (or one item of it) → JSON: text for strings (`{"b64"}` if the output name ends
    in `_bytes`), the shortest float32 decimal for floats (as TF Serving's `WriteDecimal`)."""
    array = np.asarray(array)
    if array.ndim:
        return [json_value(item, alias) for item in array]
    value = array[()]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")} if alias.endswith("_bytes") else value.decode("utf-8")
    return float(str(value)) if isinstance(value, np.floating) else value.item()


def json_request(emulator, model, version, document):
    """The `PredictRequest` of a JSON body ("Request format"; `FillPredictRequestFromJson`)."""
    if not isinstance(document, dict):
        raise invalid("JSON Value: is not object")
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model, document.get("signature_name", "")
    if version:
        request.model_spec.version.value = int(version)
    try:
        signature = emulator.signature(request.model_spec)[1]
    except ServingError as error:  # the REST handler looks the signature up itself
        if error.code != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        raise invalid(f'Serving signature name: "{name}" not found in signature def') from None
    dtypes = {alias: tf.dtypes.as_dtype(info.dtype) for alias, info in signature.inputs.items()}
    if ("instances" in document) == ("inputs" in document):
        raise invalid("expecting exactly one of 'inputs' or 'instances' keys")
    if "instances" in document:  # row format: one value (or object of named values) per item
        instances = document["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid("JSON Value: No values in 'instances' array")
        if len(dtypes) == 1 and (not isinstance(instances[0], dict) or is_b64(instances[0])):
            instances = [{next(iter(dtypes)): item} for item in instances]
        if any(not isinstance(item, dict) or set(item) != set(dtypes) for item in instances):
            raise invalid(f"'instances' objects: keys must be equal to: {','.join(sorted(dtypes))}")
        items = {alias: [json_tensor(item[alias], dtype) for item in instances] for alias, dtype in dtypes.items()}
        if any(len({item.shape for item in column}) > 1 for column in items.values()):
            raise invalid("'instances': every item must have the same shape")
        arrays = {alias: np.stack(column) for alias, column in items.items()}
    else:  # columnar format: one value per input, or the value itself for a single input
        inputs = document["inputs"]
        if len(dtypes) == 1 and (not isinstance(inputs, dict) or is_b64(inputs)):
            inputs = {next(iter(dtypes)): inputs}
        for alias in sorted(set(dtypes) - set(inputs)):
            raise invalid(f"Missing named input: {alias} in 'inputs' object.")
        arrays = {alias: json_tensor(inputs[alias], dtype) for alias, dtype in dtypes.items()}
    for alias, array in arrays.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(array, dtype=dtypes[alias], shape=array.shape))
    return request


def rest_predict(emulator, path, body):
    """`(HTTP status, reply)` of `POST path` with JSON text `body` ("Predict API": `predictions`
    for rows, an object per item when there are several outputs; `outputs` for columns)."""
    match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", path)
    try:
        if not match:
            raise invalid(f"Malformed request: POST {path}")
        try:
            document = json.loads(body)
        except ValueError as error:
            raise invalid(f"JSON Parse error: {error}") from None
        request = json_request(emulator, match.group(1), match.group(2), document)
        outputs = {alias: tf.make_ndarray(proto) for alias, proto in emulator.predict(request).outputs.items()}
    except ServingError as error:
        return HTTP_STATUS.get(error.code, 500), {"error": error.message}
    if "inputs" in document:
        columns = {alias: json_value(value, alias) for alias, value in outputs.items()}
        return 200, {"outputs": columns if len(columns) > 1 else next(iter(columns.values()))}
    sizes = {len(value) for value in outputs.values()}
    if len(sizes) > 1:
        return 400, {"error": f"outputs of inconsistent batch sizes {sorted(sizes)}"}
    rows = [{alias: json_value(value[i], alias) for alias, value in outputs.items()} for i in range(sizes.pop())]
    return 200, {"predictions": rows if len(outputs) > 1 else [next(iter(row.values())) for row in rows]}


def serve_rest(emulator):
    """A started `ThreadingHTTPServer` for the REST predict API; returns `(server, "http://127.0.0.1:port")`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
            status, reply = rest_predict(emulator, self.path, body)
            data = json.dumps(reply).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
