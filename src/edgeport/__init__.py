"""edgeport: turn a trained model into deployable artifacts that provably behave like it.

The Python API (docs/python-api.md), imported on first use so that ``import edgeport`` stays light:
``edgeport.export``, ``edgeport.train``, ``edgeport.evaluate``, and the seed's conversion functions
``edgeport.representative_data_gen`` and ``edgeport.convert_to_tflite``.
"""

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {
    "export": "edgeport.export",
    "train": "edgeport.api",
    "evaluate": "edgeport.api",
    "representative_data_gen": "edgeport.conversion",
    "convert_to_tflite": "edgeport.conversion",
}

__all__ = ["__version__", "convert_to_tflite", "evaluate", "export", "representative_data_gen", "train"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'edgeport' has no attribute '{name}'")
    import importlib

    module = importlib.import_module(_API[name])
    if module.__name__ == f"edgeport.{name}":
        # ``edgeport.export`` stays the module (Python binds it there on import; ``import edgeport.export as E``
        # must give the module); the module is callable: ``edgeport.export(...)`` calls ``export()``
        return module
    value = getattr(module, name)
    globals()[name] = value
    return value
