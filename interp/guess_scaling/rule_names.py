"""Names of the vote rules, importable without numpy (the CLI's parser lists them as choices)."""

LABEL_FREE_RULES = ("majority", "majority_first", "confidence", "cell_majority", "prob_average", "q_select",
                    "residual_select")
ORACLE_RULES = ("oracle_any", "augmented_hrm")  # look at the answer: upper bounds, not test-time methods
ALL_RULES = LABEL_FREE_RULES + ORACLE_RULES

__all__ = ["LABEL_FREE_RULES", "ORACLE_RULES", "ALL_RULES"]
