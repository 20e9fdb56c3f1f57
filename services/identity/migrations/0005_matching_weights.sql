-- The matcher's fitted weights (`csc identity fit-matcher`): m and u of each outcome,
-- the prior, and name frequencies for the term-frequency adjustment, as one JSON
-- document (identity.matching_weights.Weights.to_json). The newest row is what the
-- service scores with; with no row it uses the table in identity/matching_weights.py.
CREATE TABLE match_weights (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fitted_at timestamptz NOT NULL DEFAULT now(),
    weights   jsonb NOT NULL
);
