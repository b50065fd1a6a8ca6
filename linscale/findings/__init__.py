"""What the book states as findings, by claim family: from the results tables or the stored fits (read by
:mod:`~linscale.findings.inputs`, and by :func:`~linscale.findings.claims.claims_from_results` and the
``*_probe`` functions from a folder) to tidy DataFrames, verdicts and words the prose can glue.

* :mod:`~linscale.findings.rules`: how evidence becomes a verdict (reproduced, not reproduced,
  inconclusive, not testable), with the equivalence margins fixed before the data and the noise model
  (:class:`~linscale.findings.rules.Noise`);
* :mod:`~linscale.findings.laws`: the loss envelope, fits a grid may not support, Table 3 side by side;
* :mod:`~linscale.findings.downstream`: the evaluated checkpoints, chance levels, retrieval;
* :mod:`~linscale.findings.ablations`: aspect ratio, training context, seeds and their noise;
* :mod:`~linscale.findings.claims`: each of the paper's claims tested by one rule
  (:func:`~linscale.findings.claims.claims_from_results`);
* :mod:`~linscale.findings.inputs`: the stored fits and the loss the fits use, read from a results folder;
* :mod:`~linscale.findings.efficiency`: committed benchmark reports.

Everything is re-exported here, so a chapter writes ``findings.claims_from_results``.
"""
from linscale.findings.rules import (CONFIDENCE, INCONCLUSIVE, LINEAR, MARGINS, NOT_REPRODUCED, NOT_TESTABLE,
                                     REPRODUCED, VERDICTS, Noise, combine, difference, equivalence,
                                     interval_difference, interval_equivalence, margin_to_flip)
from linscale.findings.laws import (CONTEXT_DOES_NOT, CONTEXT_EXPLAINS, COOLDOWN_DOES_NOT, COOLDOWN_EXPLAINS,
                                    DEPTH_DOES_NOT, DEPTH_EXPLAINS, EMBEDDING_DOES_NOT, EMBEDDING_EXPLAINS,
                                    FORM_DOES_NOT, FORM_EXPLAINS, HEADS_DOES_NOT, HEADS_EXPLAINS, HOLDOUT_TARGET,
                                    KNOWLEDGE_DOES_NOT, KNOWLEDGE_EXPLAINS, LR_DOES_NOT, LR_EXPLAINS, METHOD_NAMES,
                                    UNIFORM_DOES_NOT, UNIFORM_EXPLAINS, WINDOW_DOES_NOT, WINDOW_EXPLAINS, FitAttempt,
                                    allocation_exponents, common_compute, compute_gap_decades, context_probe,
                                    context_verdict, cooldown_probe, cooldown_verdict, crossed_behind_sentence,
                                    depth_probe, depth_verdict, e_miss_reading, embedding_probe, embedding_verdict,
                                    envelope_at,
                                    form_probe, form_verdict, heads_probe, heads_verdict, holdout_against_design,
                                    holdout_reach, interval_probe, irreducible_vs_bayes, knowledge_probe,
                                    knowledge_verdict, law_points, lowest_envelope_shares,
                                    lr_misfit_verdict, lr_probe,
                                    per_arch_verdicts, probe_ratios, ratio_verdict, refit_failure_words, refit_misfit,
                                    retrain_change,
                                    run_residuals, size_inversions, sizes_off_law, sizes_split, split_sentence,
                                    table3_side_by_side, try_fit, uniform_probe, window_probe,
                                    window_verdict)
from linscale.findings.downstream import (AT_CHANCE_MARGIN, BINDER_BUCKETS, BINDER_DOES_NOT, BINDER_EXPLAINS,
                                          BINDER_NOT_MEASURED,
                                          BINDER_PARTLY, BINDING_ALPHA, BINDING_ROLE, DOWNSTREAM_METRICS,
                                          LONG_STRATUM, NOT_REPLICATED, REPLICATED, RETRIEVAL_LOTTERY_SD, RETRIEVAL_TASKS,
                                          ROLE_SKILLS,
                                          SUMMARY_COLUMNS, binder_distance_probe, binder_distance_summary, binder_gap,
                                          binder_probe, binder_summary,
                                          binder_verdict, binding_finals, binding_learned, replication_verdict,
                                          stratum_difference,
                                          binding_probe, binding_summary, binding_verdict, compare_at_largest,
                                          context_blind_excess, downstream_chance, downstream_table,
                                          committed_finals, final_checkpoints, largest_model_cells, later_seeds,
                                          mode_probe, paired_difference, ranking,
                                          retrieval_long, role_contributions, role_finals, seeds_are_a_lottery,
                                          split_at_largest_gap,
                                          with_chance)
from linscale.findings.ablations import (ACCURACY_LABELS, DEFAULT_TOLERANCE, Tolerances, ablation_scores,
                                         ablation_summary, accuracy_noise, context_raw_sentence,
                                         context_size_words, loss_spread,
                                         noise_against_prediction, read_ablation, seed_noise, seed_tolerance,
                                         size_seeds_words)
from linscale.findings.claims import (CLAIM_COLUMNS, SeedRuns, ablation_claims, allocation_claims, claims_from_results,
                                      downstream_claims, envelope_losses, exponent_claim, largest_size_seeds,
                                      lower_loss_claim, lower_loss_sides, measured_sized_noise, retrieval_scores,
                                      sized_noise, verdict_counts)
from linscale.findings.inputs import (final_rows, fitted_window, identified_archs, narrowed, read_fit, read_fits_table,
                                     read_fit_status, size_order, stored_attempts, with_fitted_loss)
from linscale.findings.efficiency import gpu_report_tables, gpu_reports, newest_gpu_tables
