-- Per-unit rows of the days still open: each network unit's hits on one value of the one dimension
-- it is counted in. Dropped when the day is final, like visitor_days.
CREATE TABLE unit_days (
    site_id   text        NOT NULL,
    day       date        NOT NULL,
    unit      text        NOT NULL,
    dimension text        NOT NULL,
    value     text        NOT NULL,
    hits      bigint      NOT NULL,
    first_at  timestamptz NOT NULL,
    PRIMARY KEY (site_id, day, unit, value)
);

-- Distinct visitors per site, final day, dimension and value: what visitor_days becomes once the
-- day is final and its per-visitor rows are dropped.
CREATE TABLE visitor_counts (
    site_id   text   NOT NULL,
    day       date   NOT NULL,
    dimension text   NOT NULL,
    value     text   NOT NULL,
    visitors  bigint NOT NULL,
    PRIMARY KEY (site_id, day, dimension, value)
);

-- What partners see of a final day: only cells that passed suppression (README, partner reports).
CREATE TABLE partner_cells (
    site_id   text   NOT NULL,
    day       date   NOT NULL,
    dimension text   NOT NULL,
    value     text   NOT NULL,
    visitors  bigint NOT NULL,
    hits      bigint NOT NULL,
    PRIMARY KEY (site_id, day, dimension, value)
);

-- Days whose per-visitor rows are gone and whose partner cells are fixed for good.
CREATE TABLE final_days (
    site_id      text        NOT NULL,
    day          date        NOT NULL,
    finalized_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, day)
);
