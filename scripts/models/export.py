"""ONNX export for onnxruntime-node 1.30: pinned opsets, IR version 8, no ZipMap, fixed graph name.

onnx 1.23 writes IR 14 / opset 28 by default, which onnxruntime-node 1.30 cannot read: every model here is
converted with OPSETS and stamped IR_VERSION (the IR version that goes with opset 17).
"""
import numpy as np
import onnx
import onnxruntime as ort
from lightgbm import LGBMRegressor
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

OPSETS = {'': 17, 'ai.onnx.ml': 3}
IR_VERSION = 8

# onnxmltools' own entry point stops at opset 15; through skl2onnx its LightGBM converter takes OPSETS.
update_registered_converter(LGBMRegressor, 'LightGbmLGBMRegressor', calculate_linear_regressor_output_shapes,
                            convert_lightgbm, options={'split': None})


def _finish(model: onnx.ModelProto, graph_name: str, outputs: dict[str, str]) -> onnx.ModelProto:
    """Pins the IR version, renames graph outputs (old → new) and checks the result."""
    model.ir_version = IR_VERSION
    model.graph.name = graph_name
    # The converters build opset_import from a set: sort it so the file's bytes do not depend on PYTHONHASHSEED.
    opset_imports = sorted(((o.domain, o.version) for o in model.opset_import))
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in opset_imports)
    for old, new in outputs.items():
        for node in model.graph.node:
            node.output[:] = [new if o == old else o for o in node.output]
        for out in model.graph.output:
            if out.name == old:
                out.name = new
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert all(opsets.get(d, 0) <= v for d, v in OPSETS.items()), f'opsets {opsets} exceed {OPSETS}'
    return model


def lightgbm_to_onnx(booster, n_features: int, input_name: str, graph_name: str, outputs: dict[str, str]) -> onnx.ModelProto:
    return sklearn_to_onnx(booster, n_features, input_name, graph_name, outputs)


def sklearn_to_onnx(estimator, n_features: int, input_name: str, graph_name: str, outputs: dict[str, str],
                    classifier: bool = False) -> onnx.ModelProto:
    options = {id(estimator): {'zipmap': False}} if classifier else None
    model = convert_sklearn(
        estimator, name=graph_name, initial_types=[(input_name, FloatTensorType([None, n_features]))],
        target_opset=OPSETS, options=options,
    )
    return _finish(model, graph_name, outputs)


def run_onnx(model: onnx.ModelProto, input_name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Runs the model in the Python onnxruntime (CPU, one thread) on float32 input."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=['CPUExecutionProvider'])
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, {input_name: x.astype(np.float32)})
    return dict(zip(names, values))
