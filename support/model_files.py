"""A saved model and what its output means: the .keras file, its LiteRT copy, and what runs it.

train.py stores the model's info (class names, input size, thresholds, what it was trained on)
as crack_classifier.json inside the .keras archive (Keras ignores it) and in the .tflite file's
metadata, so predict.py never has to guess what a model's output means. predict.py runs the
LiteRT copy when it can (a photo in well under a second, without importing TensorFlow) and the
.keras file with TensorFlow otherwise.

Two classes: one sigmoid output, the probability of the second class. More: one softmax output
per class. class_probabilities() turns either into one column per class. A model whose info holds
feature statistics (support/unfamiliar.py) has a second output in its .tflite file, the features
its last layer reads; predict.py reads them from the .keras file the same way.
"""

import json
import importlib.util
import os
import struct
import zipfile

import numpy as np

from support import unfamiliar
from support.atomic_files import writing
from support.errors import InputError
from support.runner import quiet_stderr

INFO_NAME = "crack_classifier.json"  # kept for every kind of model: models saved before still load
PATCH_SIZE = 227  # the dataset's patch side in photo pixels: a crack model's tile when its info names none
CRACK_CLASSES = ["Negative", "Positive"]  # Özgenel's folders: a crack model (support/crack_rules.py)
# A model file is read (LiteRT) or unpacked (Keras) whole: a larger one, or a .keras archive whose members
# say they unpack to more (a zip bomb: 1.5 GB from 1.9 MB), is refused before either. train.py's are a few MB.
MAX_MODEL_BYTES = 256 * 2 ** 20
MAX_INFO_BYTES = 2 ** 20
INT8_EXAMPLES = 300  # training images that set the int8 activation ranges (train.py --int8-litert)


def output_width(class_names):
    return 1 if len(class_names) == 2 else len(class_names)


def predicted_classes(probs, threshold=0.5):
    """Each row's class from (n, classes) probabilities: for two classes the second from
    `threshold` up, for more the most probable."""
    return (probs[:, 1] >= threshold).astype(int) if probs.shape[1] == 2 else probs.argmax(axis=1)


def class_probabilities(outputs):
    """(n, classes) probabilities from a model's outputs: a sigmoid's p becomes (1 - p, p)."""
    outputs = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
    return np.hstack([1 - outputs, outputs]) if outputs.shape[1] == 1 else outputs


def with_features(model):
    """The model with a second output, what it sees in an input (support/unfamiliar.py): the mean of
    each convolution's maps and the features its last layer reads, side by side. Any network works:
    its Conv2D layers and its layer before the output are found, whatever they are."""
    from support.tf_import import keras

    layers = keras.layers
    pooled = [layers.GlobalAveragePooling2D()(layer.output) for layer in model.layers if isinstance(layer, layers.Conv2D)]
    features = layers.Concatenate(dtype="float32")([*pooled, model.layers[-2].output])
    return keras.Model(model.inputs[0], [model.outputs[0], features])


def save_model(model, path, info):
    """Save a .keras file with `info` (what the output means) inside it, complete or not at all."""
    with writing(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:  # Keras reads only its own members of the archive
            archive.writestr(INFO_NAME, json.dumps(info, indent=1))


def export_litert(model, path, info, int8_from=None, seed=0):
    """Save the model as a LiteRT flat buffer (.tflite) with `info` in its metadata.

    It takes the same raw uint8 RGB batches as the .keras model (any batch size) and gives the
    same probabilities. The info is kept where TFLite keeps metadata (a named buffer, like the
    converter's own min_runtime_version), so the one file is all a device needs.

    int8_from (uint8 images, e.g. the training split): quantise weights and activations to int8,
    with INT8_EXAMPLES of these images (seeded) setting the activations' ranges. A quarter of the
    size and about three times faster; probabilities then differ from the .keras model's by up to a
    few hundredths.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    from support.tf_import import tf

    size = model.input_shape[1]
    exported = with_features(model) if info.get("features") else model
    quantise = {}
    if int8_from is not None:
        rows = np.random.default_rng(seed).choice(len(int8_from), min(INT8_EXAMPLES, len(int8_from)), replace=False)
        int8_examples = np.asarray(int8_from[np.sort(rows)])  # sorted: sequential reads from a memory map
        quantise = {"optimizations": [tf.lite.Optimize.DEFAULT],
                    "representative_dataset": lambda: ([image[None]] for image in int8_examples)}
    with writing(path) as tmp:
        with quiet_stderr():  # the converter's C++ progress lines
            exported.export(str(tmp), format="litert", verbose=False,
                         input_signature=[tf.TensorSpec((None, size, size, 3), tf.uint8)], **quantise)
        flat = flatbuffer_utils.read_model(str(tmp))
        buffer = schema.BufferT()
        buffer.data = list(json.dumps(info).encode())
        flat.buffers.append(buffer)
        metadata = schema.MetadataT()
        metadata.name, metadata.buffer = INFO_NAME, len(flat.buffers) - 1
        flat.metadata.append(metadata)
        flatbuffer_utils.write_model(flat, str(tmp))


def read_model_info(path):
    """The info a .keras or .tflite model was saved with; raises InputError if it has none.

    Reads the file only: no TensorFlow is imported.
    """
    if os.stat(path).st_size > MAX_MODEL_BYTES:
        raise InputError(f"larger than {MAX_MODEL_BYTES // 2 ** 20} MB: no model of train.py's; not read")
    try:
        if str(path).endswith(".tflite"):
            info = json.loads(read_tflite_metadata(path)[INFO_NAME])
        else:
            with zipfile.ZipFile(path) as archive:
                check_unpacked_sizes(archive)
                info = json.loads(archive.read(INFO_NAME))
        problem = info_problem(info)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as error:  # ValueError: JSON, UTF-8
        raise InputError(f"it does not say what its output means ({INFO_NAME} inside it: {error}); "
                         "save it with train.py") from None
    if problem:
        raise InputError(f"what it says its output means is damaged ({problem}); save it again with train.py")
    return info


def check_unpacked_sizes(archive):
    """Refuse a .keras archive from the sizes its members declare, before unpacking any: Python's zipfile
    stops at the declared size, so no member yields more than it says."""
    if archive.getinfo(INFO_NAME).file_size > MAX_INFO_BYTES:
        raise InputError(f"its {INFO_NAME} says it unpacks to more than {MAX_INFO_BYTES // 2 ** 20} MB")
    if sum(member.file_size for member in archive.infolist()) > MAX_MODEL_BYTES:
        raise InputError(f"it unpacks to more than {MAX_MODEL_BYTES // 2 ** 20} MB: no model of train.py's")


def check_starting_model(path, meta):
    """Refuse, before any work, a model to fine-tune that was made for other classes or images."""
    try:
        info = read_model_info(path)
    except (OSError, InputError) as error:
        raise InputError(f"cannot use --init-from {path}: {error}")
    theirs, ours = ([c.lower() for c in names] for names in (info["class_names"], meta["class_names"]))
    if theirs != ours:  # the same classes in another order would swap the model's outputs
        remedy = (f"data_prep.py --classes {','.join(info['class_names'])}" if sorted(theirs) == sorted(ours)
                  else "those class folders")
        raise InputError(f"{path} tells {', '.join(info['class_names'])} apart, but the cache holds "
                         f"{', '.join(meta['class_names'])}: make the cache with {remedy}")
    if info["image_size"] != meta["image_size"]:
        raise InputError(f"{path} takes {info['image_size']} px images but the cache holds "
                         f"{meta['image_size']} px; run data_prep.py with --size {info['image_size']}")


def info_problem(info):
    """What is wrong with a model's info, or None: the class names, input size and thresholds predict uses."""
    names = info["class_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        return f"class_names must be a list of names, not {names!r:.80}"
    if len(names) < 2 or len(set(names)) < len(names):
        return "class_names must name two classes or more, each once"
    if type(info["image_size"]) is not int or info["image_size"] < 1:
        return f"image_size must be a whole number of pixels, not {info['image_size']!r:.80}"
    for key in ("threshold", "sure_threshold"):
        value = info.get(key, 0.5)
        if type(value) not in (int, float) or not 0 <= value <= 1:
            return f"{key} must be a probability from 0 to 1, not {value!r:.80}"
    if "patch_size" in info and (type(info["patch_size"]) is not int or info["patch_size"] < 0):
        return f"patch_size must be a whole number of pixels, not {info['patch_size']!r:.80}"
    if type(info.get("smooth_below", 0.0)) not in (int, float):
        return f"smooth_below must be a number, not {info['smooth_below']!r:.80}"
    if info.get("features") is not None:
        return unfamiliar.statistics_problem(info["features"])
    return None


def read_tflite_metadata(path):
    """{name: bytes} of a .tflite file's metadata, read with the flat buffer schema that comes with
    the LiteRT runtime (or TensorFlow's copy of it); raises InputError if it is not a flat buffer."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    with open(path, "rb") as f:
        data = f.read()
    try:
        flat = schema.Model.GetRootAs(data)
        entries = [flat.Metadata(i) for i in range(flat.MetadataLength())]
        return {m.Name().decode(): flat.Buffers(m.Buffer()).DataAsNumpy().tobytes() for m in entries}
    except (struct.error, IndexError, AttributeError, UnicodeDecodeError):  # offsets pointing nowhere
        raise InputError("it is not a LiteRT flat buffer (damaged, or another format)") from None


def find_model(path):
    """The model file --model names: a .keras or .tflite file, or train.py's --out folder (its model.keras)."""
    if path.is_dir() and (path / "model.keras").is_file():
        return path / "model.keras"
    if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO would wait for a writer forever
        raise InputError(f"model file {path} is not a regular file (a pipe, socket or device)")
    if not path.is_file():
        raise InputError(f"model file {path} does not exist" + (
            " (a folder without model.keras)" if path.is_dir() else "" if path.suffix in (".keras", ".tflite")
            else " (expected a .keras or .tflite from train.py)"))
    return path


def choose_backend(model_path, backend):
    """(path to load, backend name, note or "") for --model and --backend.

    LiteRT starts in a fraction of a second where TensorFlow takes seconds, so it is used when
    its runtime is installed and the model has a .tflite version (train.py writes one beside
    the .keras file; a .tflite of another training run is not used). Otherwise TensorFlow runs
    the .keras file, with a note saying why.
    """
    tflite_path = model_path.with_suffix(".tflite")
    keras_path = model_path.with_suffix(".keras") if model_path.suffix == ".tflite" else model_path
    if backend == "tensorflow":
        if not keras_path.is_file():
            raise InputError(f"--backend tensorflow needs {keras_path}, which does not exist")
        return keras_path, "tensorflow", ""
    has_runtime = litert_installed()
    if backend == "litert" or model_path.suffix == ".tflite":
        if has_runtime and tflite_path.is_file():
            return tflite_path, "litert", ""
        if not tflite_path.is_file():
            raise InputError(f"--backend litert needs {tflite_path}, which does not exist")
        if model_path.suffix == ".tflite" and backend == "auto" and keras_path.is_file():
            return keras_path, "tensorflow", f"note: the LiteRT runtime is not installed; using {keras_path} with TensorFlow"
        raise InputError(f"{tflite_path} needs the LiteRT runtime: pip install ai-edge-litert "
                         "(wheels for Linux x86_64/aarch64, macOS arm64, Windows x86_64)")
    if not tflite_path.is_file():
        return keras_path, "tensorflow", ""
    if not has_runtime:
        return keras_path, "tensorflow", ("note: the LiteRT runtime is not installed (pip install ai-edge-litert), "
                                          "so TensorFlow runs the model: slower to start")
    try:
        same = read_model_info(keras_path) == read_model_info(tflite_path)
    except (OSError, InputError) as error:
        return keras_path, "tensorflow", f"note: {tflite_path} is not used: {error}"
    if same:
        return tflite_path, "litert", ""
    return keras_path, "tensorflow", f"note: {tflite_path} is from another training run than {keras_path}: not used"


def litert_installed():
    return importlib.util.find_spec("ai_edge_litert") is not None


def load_classifier(model_path, backend):
    """(classify, info): classify maps a uint8 batch to ((n, classes) probabilities, which of the n
    are unlike the training images: support/unfamiliar.py); info says what they mean. A model whose
    input or output disagrees with its info is refused with one line."""
    try:
        info = read_model_info(model_path)
        loader = litert_classifier if backend == "litert" else keras_classifier
        run_model, input_shape, width = loader(model_path, bool(info.get("features")))
        size, names = int(info["image_size"]), list(info["class_names"])
        if info.get("features"):  # features as wide as the statistics describe
            unfamiliar.check_width(run_model(np.zeros((1, size, size, 3), np.uint8))[1], info["features"])
    except Exception as exc:  # Keras and LiteRT raise many types for a damaged or foreign file
        raise InputError(f"cannot load model {model_path}: {str(exc).splitlines()[0]}")
    if tuple(input_shape[1:]) != (size, size, 3):
        raise InputError(f"{model_path} takes input {tuple(input_shape[1:])} but its info says "
                         f"{size}x{size} RGB; save it again with train.py")
    if len(names) < 2 or width != output_width(names):
        raise InputError(f"{model_path} gives {width} outputs per image but its info names "
                         f"{len(names)} classes ({', '.join(map(str, names))}); save it again with train.py")

    def classify(batch):
        outputs, features = run_model(batch)
        return class_probabilities(outputs), unfamiliar.far_from_training(features, info, len(outputs))

    return classify, info


def keras_classifier(path, features=False):
    """(run, input shape, output width): run maps a batch to (outputs, features or None)."""
    from support.tf_import import keras, tf

    model = keras.models.load_model(path, compile=False)
    both = with_features(model) if features else model
    # One traced graph for every batch size: no re-tracing when the last batch is shorter.
    infer = tf.function(lambda x: both(x, training=False),
                        input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8)])

    def run(batch):
        result = infer(np.asarray(batch))
        return (result[0].numpy(), result[1].numpy()) if features else (result.numpy(), None)
    return run, model.input_shape, model.output_shape[-1]


def litert_classifier(path, features=False):
    """As keras_classifier, for a .tflite file (its features are its second output, "output_1")."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=os.cpu_count()).get_signature_runner()
    (name, details), = runner.get_input_details().items()
    outputs = runner.get_output_details()
    first = "output_0" if len(outputs) > 1 else next(iter(outputs))
    if features and len(outputs) != 2:
        raise InputError(f"its info holds feature statistics but it has {len(outputs)} outputs, not 2")

    def run(batch):
        result = runner(**{name: np.asarray(batch, np.uint8)})
        return result[first], result["output_1"] if features else None

    with quiet_stderr():  # the first call prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        run(np.zeros((1, *details["shape"][1:]), np.uint8))
    return run, details["shape_signature"], int(outputs[first]["shape"][-1])


def tile_for(meta, init_from, default):
    """predict.py's tile for a model trained on this cache, in photo pixels: that of the boxes it is
    trained on (a labels file), else that of the model it starts from, else its kind's `default`
    (VerdictRule.tile: 0 for whole images, as data_prep read them; a crack model's, the dataset's patch)."""
    start = read_model_info(init_from).get("patch_size") if init_from else None
    return meta.get("tile") or start or default
