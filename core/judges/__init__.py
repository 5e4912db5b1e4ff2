"""Statistical judges for gates: pure functions, standard library only.

`mann_whitney` (Kayenta-style canary-versus-baseline classification and
scoring), `sequential` (SPRT error-rate tests that may stop early),
`drift` (PSI and Jensen–Shannon over prediction histograms) and `analysis`
(replaying recorded measurements through a gate).
"""
