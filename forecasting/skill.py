"""Forecast error and skill against a baseline, the same way for PV and carbon."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ForecastError:
    """Errors of a forecast in the unit of the forecast (kW, gCO2/kWh, ...)."""

    mae: float
    rmse: float

    @classmethod
    def of(cls, forecast: np.ndarray, actual: np.ndarray) -> ForecastError:
        """Mean absolute and root-mean-square error over all values."""
        error = np.asarray(forecast, dtype=float) - np.asarray(actual, dtype=float)
        if error.size == 0 or not np.isfinite(error).all():
            raise ValueError("need at least one finite forecast and actual value")
        return cls(mae=float(np.abs(error).mean()), rmse=float(np.sqrt((error**2).mean())))

    def skill(self, baseline: ForecastError) -> tuple[float, float]:
        """``1 - error / baseline error`` for MAE and RMSE [-]: > 0 beats the baseline."""
        return 1.0 - self.mae / baseline.mae, 1.0 - self.rmse / baseline.rmse
