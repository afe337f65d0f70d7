"""Data: bundled and toy data sets, local MNIST-format files, transforms, validation.

Example:
    >>> x, y = pgen.data.load("mnist5k", "train", binarize="threshold")
    >>> x_test, y_test = pgen.data.load("mnist5k", "test", binarize="threshold")
"""

from .datasets import DatasetInfo, info, load, names
from .files import ImageFiles, open_images
from .mnist import load_mnist_files, read_idx
from .runconfig import BINARIZE, EVAL_SEED, Split, data_config, load_split, split_validation
from .tabular import breast_cancer, eight_schools, synthetic_regression
from .transforms import binarize, dequantize, dynamic_binarize, requantize, scale_to_unit, static_binarize
from .validate import check_data, check_labels, check_same_length, check_unit_interval

__all__ = [
    "load",
    "info",
    "names",
    "DatasetInfo",
    "data_config",
    "load_split",
    "split_validation",
    "Split",
    "BINARIZE",
    "EVAL_SEED",
    "read_idx",
    "open_images",
    "ImageFiles",
    "breast_cancer",
    "eight_schools",
    "synthetic_regression",
    "load_mnist_files",
    "scale_to_unit",
    "binarize",
    "static_binarize",
    "dynamic_binarize",
    "dequantize",
    "requantize",
    "check_data",
    "check_labels",
    "check_same_length",
    "check_unit_interval",
]
