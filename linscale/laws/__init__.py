"""Scaling-law fits of a runs table (the sweep's results table, :mod:`linscale.train.results`): the paper's
envelope method and Chinchilla's three approaches.

    from linscale.laws import fit, bootstrap, extrapolation_check, compare_with_paper
    fit1 = bootstrap(runs, "approach1", n_resamples=1000, seed=0, loss_column="train_loss")  # paper's method
    compare_with_paper(fit1)                                       # vs Table 3, per architecture
    fit3 = bootstrap(runs, "approach3", n_resamples=1000)          # L(N, D) = E + A/N^α + B/D^β
    extrapolation_check(runs, "approach3", holdout="largest_size").params

Every function takes a DataFrame with run_id, params (non-embedding N), tokens (D), flops (C) and a
loss column (``prepare_runs`` documents the accepted names) and returns a ``LawFit`` of tidy
DataFrames (params, points, diagnostics, draws). Fits are per ``by`` group (default "arch").
"""
from linscale.laws.approach1 import fit_approach1, loss_envelope
from linscale.laws.approach2 import fit_approach2, isoflop_profiles, parabola_minimum
from linscale.laws.approach3 import HUBER_DELTA, fit_approach3, huber_objective, predict_loss, start_grid
from linscale.laws.table3 import compare_with_paper, paper_table3
from linscale.laws.data import LawsInputError, optimal_allocation, prepare_runs, read_table, simulate_isoflop, simulate_runs
from linscale.laws.powerlaw import fit_power_law
from linscale.laws.result import LawFit
from linscale.laws.uncertainty import bootstrap, extrapolation_check, fit

METHODS = ("approach1", "approach2", "approach3")

__all__ = [
    "HUBER_DELTA", "LawFit", "LawsInputError", "METHODS", "bootstrap", "compare_with_paper", "extrapolation_check",
    "fit", "fit_approach1", "fit_approach2", "fit_approach3", "fit_power_law", "huber_objective",
    "isoflop_profiles", "loss_envelope", "optimal_allocation", "paper_table3", "parabola_minimum", "predict_loss", "prepare_runs", "read_table",
    "simulate_isoflop", "simulate_runs", "start_grid",
]
