"""XGBoost's classifier for the labels real tables have: text, booleans, any integers.

``xgboost.XGBClassifier`` accepts only the labels ``0..n-1`` ("Invalid classes inferred from
unique values of `y`": since XGBoost 1.6 it no longer encodes them itself), while every other
candidate takes ``yes``/``no``, species names or ``1``/``2`` as they are. This subclass encodes
the labels in :meth:`fit`, predicts the user's own labels and reports them in ``classes_``, so a
pipeline, an ensemble, the ONNX export (onnxmltools' converter writes ``classes_`` as the graph's
class labels) and the package all carry the labels the user trained on.

>>> import numpy as np
>>> X = np.array([[0.0], [1.0]] * 10)
>>> model = LabelledXGBClassifier(n_estimators=2).fit(X, ["no", "yes"] * 10)
>>> model.classes_.tolist(), model.predict(X[:2]).tolist()
(['no', 'yes'], ['no', 'yes'])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xgboost import XGBClassifier

__all__ = ["LabelledXGBClassifier"]


class LabelledXGBClassifier(XGBClassifier):
    """``XGBClassifier`` that takes any class labels and answers with them."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> LabelledXGBClassifier:
        """Fit on the codes of ``y``'s sorted distinct labels; ``classes_`` are the labels."""
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        self.labels_ = None  # XGBoost checks the codes against ``classes_`` while fitting
        super().fit(X, codes, **kwargs)
        self.labels_ = labels
        return self

    @property
    def classes_(self) -> np.ndarray[Any, Any]:
        """The labels seen in :meth:`fit`, sorted (what ``predict_proba``'s columns mean)."""
        labels = getattr(self, "labels_", None)
        return np.arange(self.n_classes_) if labels is None else labels

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray[Any, Any]:
        """The most probable label of each row, as given to :meth:`fit` (margins, when asked
        for with ``output_margin=True``, are XGBoost's own)."""
        if kwargs.get("output_margin"):
            return np.asarray(super().predict(X, **kwargs))
        codes = np.asarray(super().predict(X, **kwargs), dtype=np.intp)
        return np.asarray(self.classes_)[codes]
