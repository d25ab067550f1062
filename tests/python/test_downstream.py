"""Downstream use of `methvb run`'s regions.parquet with real clients: pyarrow, polars, DuckDB.

Checks the schema, the key-value metadata, the row count and call counts against run.json, the
raw ratios against an independent recomputation in SQL from `methvb sites`, internal
consistency of the posterior summaries, and the coverage of the true effects of the simulation.
"""

from __future__ import annotations

import json
import math

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import polars as pl
import pytest

from conftest import RUN_SEED, Dataset, Run, run_cmd


def expected_schema(groups: list[str], samples: list[str]) -> list[tuple[str, pa.DataType]]:
    cols: list[tuple[str, pa.DataType]] = [
        ("region_id", pa.string()),
        ("chrom", pa.string()),
        ("start", pa.uint64()),
        ("end", pa.uint64()),
        ("n_sites", pa.uint32()),
        ("n_samples", pa.uint32()),
    ]
    cols += [(f"coverage_{g}", pa.uint64()) for g in groups]
    cols += [(f"raw_{g}", pa.float64()) for g in groups]
    cols += [(f"site_mean_{g}", pa.float64()) for g in groups]
    cols += [(f"sample_meth_{s}", pa.float64()) for s in samples]
    cols += [(f"sample_coverage_{s}", pa.uint64()) for s in samples]
    for g in groups:
        cols += [(f"theta_{g}_{s}", pa.float64()) for s in ("mean", "sd", "q025", "q975")]
    cols += [(f"delta_{s}", pa.float64()) for s in ("mean", "sd", "q025", "q975")]
    cols += [
        ("prob_dm", pa.float64()),
        ("lfsr", pa.float64()),
        ("pep", pa.float64()),
        ("p_null", pa.float64()),
        ("phi_mean", pa.float64()),
        ("phi_sd", pa.float64()),
        ("elbo", pa.float64()),
        ("expected_loglik", pa.float64()),
        ("kl", pa.float64()),
        ("iterations", pa.uint32()),
        ("converged", pa.bool_()),
        ("khat", pa.float64()),
        ("khat_threshold", pa.float64()),
        ("ess", pa.float64()),
        ("delta_shift", pa.float64()),
        ("prob_dm_shift", pa.float64()),
        ("reliable", pa.bool_()),
        ("refit", pa.uint32()),
        ("family", pa.string()),
        ("ppc_dispersion_z", pa.float64()),
        ("ppc_worst_site", pa.uint32()),
        ("ppc_worst_site_p", pa.float64()),
        ("ppc_worst_sample", pa.string()),
        ("ppc_worst_sample_p", pa.float64()),
        ("misfit", pa.bool_()),
        ("called", pa.bool_()),
    ]
    return cols


DUCKDB_TYPE = {
    pa.string(): "VARCHAR",
    pa.uint64(): "UBIGINT",
    pa.uint32(): "UINTEGER",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def sample_names(dataset: Dataset) -> list[str]:
    return [s for samples in dataset.groups().values() for s in samples]


@pytest.fixture(scope="module")
def table(reference_run: Run) -> pa.Table:
    return pq.read_table(reference_run.regions)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    yield c
    c.close()


def test_schema_with_pyarrow(table: pa.Table, dataset: Dataset) -> None:
    groups = list(dataset.groups())
    assert groups == ["control", "treated"]
    got = [(f.name, f.type) for f in table.schema]
    assert got == expected_schema(groups, sample_names(dataset))
    assert all(not f.nullable for f in table.schema), "every column is declared non-null"


def test_schema_with_duckdb(con, reference_run: Run, dataset: Dataset) -> None:
    rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(reference_run.regions)]).fetchall()
    got = [(r[0], r[1]) for r in rows]
    want = [(name, DUCKDB_TYPE[t]) for name, t in expected_schema(list(dataset.groups()), sample_names(dataset))]
    assert got == want


def test_rows_match_run_json_and_regions_bed(con, table: pa.Table, reference_run: Run, dataset: Dataset) -> None:
    info = reference_run.info()
    used = info["pass2"]["pass"]["regions_used"]
    assert table.num_rows == used
    (n,) = con.execute("SELECT count(*) FROM read_parquet(?)", [str(reference_run.regions)]).fetchone()
    assert n == used
    # Every BED region is reported unless methvb dropped it (too few sites), in BED order, with
    # the BED's 0-based half-open coordinates and its name as region_id.
    regions = info["pass2"]["pass"]["regions"]
    bed = [line.rstrip("\n").split("\t") for line in dataset.regions.read_text().splitlines() if line.strip()]
    dropped = (
        regions["regions_dropped_too_few_sites"]
        + regions["regions_dropped_no_sites"]
        + regions["regions_dropped_contig_absent"]
    )
    assert used == regions["regions_emitted"] == len(bed) - dropped
    by_id = {b[3]: (b[0], int(b[1]), int(b[2])) for b in bed}
    order = {b[3]: i for i, b in enumerate(bed)}
    ids = table.column("region_id").to_pylist()
    assert [order[i] for i in ids] == sorted(order[i] for i in ids)
    got = zip(ids, table.column("chrom").to_pylist(), table.column("start").to_pylist(), table.column("end").to_pylist())
    for rid, chrom, start, end in got:
        assert by_id[rid] == (chrom, start, end), rid


def test_metadata(con, reference_run: Run, methvb) -> None:
    kv = {k.decode(): v.decode() for k, v in pq.read_metadata(reference_run.regions).metadata.items()}
    info = reference_run.info()
    version = run_cmd([methvb, "--version"]).stdout.split()[-1]
    assert kv["methvb.version"] == version == info["version"]
    assert kv["methvb.model_version"] == info["model_version"]
    assert kv["methvb.run_id"] == info["run_id"]
    assert kv["methvb.command"] == info["command"]
    argv = kv["methvb.command"].split()
    assert argv[0] == str(methvb) and "run" in argv
    assert int(kv["methvb.seed"]) == RUN_SEED == info["seed"]
    # Exact float round trip: the Theta of the file is the one of hyper.json and run.json.
    theta = json.loads(kv["methvb.theta"])
    assert theta == reference_run.hyper_info()["theta"] == info["theta"]
    assert set(theta) == {"mu_a", "sd_a", "b_prior", "mu_w", "sd_w", "mu_k", "sd_k"}
    assert set(theta["b_prior"]) == {"sd", "weight"}
    assert float(kv["methvb.delta0"]) == info["fit_options"]["delta0"] == 0.1
    assert float(kv["methvb.fdr"]) == info["fdr"] == 0.05
    assert json.loads(kv["methvb.fit_options"]) == info["fit_options"]
    # The same pairs are in the embedded Arrow schema: what read_table().schema.metadata (and so
    # pandas) and polars show.
    schema_kv = {k.decode(): v.decode() for k, v in pq.read_table(reference_run.regions).schema.metadata.items()}
    assert {k: v for k, v in schema_kv.items() if k.startswith("methvb.")} == \
        {k: v for k, v in kv.items() if k.startswith("methvb.")}
    assert pq.read_schema(reference_run.regions).metadata[b"methvb.seed"] == str(RUN_SEED).encode()
    polars_kv = pl.read_parquet_metadata(reference_run.regions)
    assert {k: v for k, v in polars_kv.items() if k.startswith("methvb.")} == \
        {k: v for k, v in kv.items() if k.startswith("methvb.")}
    assert json.loads(kv["methvb.input_options"]) == info["input_options"]
    # DuckDB reads the same key-value metadata.
    rows = con.execute(
        "SELECT decode(key), decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) LIKE 'methvb.%'",
        [str(reference_run.regions)],
    ).fetchall()
    assert dict(rows) == {k: v for k, v in kv.items() if k.startswith("methvb.")}


def test_polars_reads_the_table(table: pa.Table, reference_run: Run) -> None:
    df = pl.read_parquet(reference_run.regions)
    assert df.columns == table.column_names
    assert df.height == table.num_rows
    called = df.filter(pl.col("called")).sort("prob_dm", descending=True)
    assert called.height == reference_run.info()["pass2"]["regions_called"]
    assert called["region_id"].to_list() == [
        r["region_id"] for r in sorted((r for r in table.to_pylist() if r["called"]),
                                       key=lambda r: -r["prob_dm"])
    ]
    # A per-sample methylation matrix for heatmaps or clustering, straight from the table.
    meth = df.select(pl.col("^sample_meth_.*$"))
    assert meth.width == 6 and meth.height == df.height


def test_pyarrow_and_duckdb_agree(con, table: pa.Table, reference_run: Run) -> None:
    via_duckdb = con.sql("SELECT * FROM read_parquet(?)", params=[str(reference_run.regions)]).to_arrow_table()
    assert via_duckdb.column_names == table.column_names
    for name in table.column_names:
        assert via_duckdb.column(name).to_pylist() == table.column(name).to_pylist(), name


def test_call_counts_match_run_json(table: pa.Table, reference_run: Run) -> None:
    p2 = reference_run.info()["pass2"]
    rows = table.to_pylist()
    assert sum(r["called"] for r in rows) == p2["regions_called"]
    assert sum(not r["reliable"] for r in rows) == p2["regions_unreliable"]
    assert sum(not r["converged"] for r in rows) == p2["regions_not_converged"]
    # The call set is the largest PEP-sorted prefix (cut between distinct PEPs) whose mean PEP
    # is within the target FDR.
    fdr = reference_run.info()["fdr"]
    pep = sorted(r["pep"] for r in rows)
    best = 0
    for k in range(1, len(pep) + 1):
        if (k == len(pep) or pep[k] != pep[k - 1]) and sum(pep[:k]) / k <= fdr:
            best = k
    called = sorted(r["pep"] for r in rows if r["called"])
    assert called == pep[:best]
    if called:
        print(f"\n{len(called)} regions called, mean PEP {sum(called) / len(called):.4f}")


def test_raw_and_coverage_match_sites_recomputed_in_duckdb(
    con, methvb, dataset: Dataset, reference_run: Run, tmp_path
) -> None:
    sites = tmp_path / "sites.parquet"
    run_cmd([methvb, "--quiet", "sites", "--samples", dataset.samples, "--out", sites])
    groups = dataset.groups()
    # The run's site filter (defaults): a site needs >= 1 read in >= 1 sample of every group.
    keep = " AND ".join(
        "(" + " + ".join(f'("{s}_n" > 0)::INT' for s in samples) + ") >= 1" for samples in groups.values()
    )
    covered = " + ".join(f'(sum("{s}_n") > 0)::INT' for samples in groups.values() for s in samples)
    aggs = []
    for g, samples in groups.items():
        m = " + ".join(f'"{s}_m"' for s in samples)
        n = " + ".join(f'"{s}_n"' for s in samples)
        aggs.append(f"sum({n}) AS coverage_{g}, sum({m}) / sum({n}) AS raw_{g}, "
                    f"avg(({m}) / nullif({n}, 0)) AS site_mean_{g}")
    for samples in groups.values():
        for smp in samples:
            aggs.append(f'avg("{smp}_m" / nullif("{smp}_n", 0)) AS sample_meth_{smp}, '
                        f'sum("{smp}_n") AS sample_coverage_{smp}')
    names = [smp for samples in groups.values() for smp in samples]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE bed AS SELECT * FROM read_csv(?, delim='\t', header=false, "
        "columns={'chrom': 'VARCHAR', 'start': 'UBIGINT', 'end': 'UBIGINT', 'name': 'VARCHAR'})",
        [str(dataset.regions)],
    )
    sql = f"""
        WITH s AS (SELECT * FROM read_parquet(?) WHERE {keep}),
        mine AS (
            SELECT b.name AS region_id, count(*) AS n_sites, {covered} AS n_samples, {", ".join(aggs)}
            FROM s JOIN bed b ON s.chrom = b.chrom AND s.pos >= b.start AND s.pos < b."end"
            GROUP BY b.name
        )
        SELECT mine.*, {", ".join(f"r.coverage_{g} AS r_coverage_{g}, r.raw_{g} AS r_raw_{g}, "
                                  f"r.site_mean_{g} AS r_site_mean_{g}" for g in groups)},
               {", ".join(f"r.sample_meth_{x} AS r_sample_meth_{x}, "
                          f"r.sample_coverage_{x} AS r_sample_coverage_{x}" for x in names)},
               r.n_sites AS r_n_sites, r.n_samples AS r_n_samples
        FROM mine JOIN read_parquet(?) r USING (region_id)
    """
    rows = con.execute(sql, [str(sites), str(reference_run.regions)]).fetchall()
    cols = [d[0] for d in con.description]
    rows = [dict(zip(cols, r)) for r in rows]
    assert len(rows) == reference_run.info()["pass2"]["pass"]["regions_used"]
    for r in rows:
        assert r["n_sites"] == r["r_n_sites"], r["region_id"]
        assert r["n_samples"] == r["r_n_samples"], r["region_id"]
        for g in groups:
            assert r[f"coverage_{g}"] == r[f"r_coverage_{g}"], r["region_id"]
            assert math.isclose(r[f"raw_{g}"], r[f"r_raw_{g}"], rel_tol=1e-12, abs_tol=1e-15), r["region_id"]
            # Site-averaged: the mean over sites of the group's pooled m/n at the site.
            assert math.isclose(r[f"site_mean_{g}"], r[f"r_site_mean_{g}"], rel_tol=1e-12, abs_tol=1e-15), \
                r["region_id"]
        for x in names:
            assert r[f"sample_coverage_{x}"] == r[f"r_sample_coverage_{x}"], (r["region_id"], x)
            assert math.isclose(r[f"sample_meth_{x}"], r[f"r_sample_meth_{x}"], rel_tol=1e-12, abs_tol=1e-15), \
                (r["region_id"], x)
    # The two raw levels differ where coverage is uneven: site_mean is what theta estimates.
    assert any(abs(r["site_mean_control"] - r["raw_control"]) > 1e-3 for r in rows)


def test_posterior_summaries_are_consistent(table: pa.Table, dataset: Dataset) -> None:
    groups = list(dataset.groups())
    n_samples = sum(len(s) for s in dataset.groups().values())
    eps = 1e-12
    for r in table.to_pylist():
        rid = r["region_id"]
        assert r["start"] < r["end"], rid
        for g in groups:
            lo, mean, hi, sd = (r[f"theta_{g}_{s}"] for s in ("q025", "mean", "q975", "sd"))
            assert 0.0 <= lo <= mean <= hi <= 1.0, rid
            assert sd > 0.0, rid
            assert 0.0 <= r[f"raw_{g}"] <= 1.0, rid
        lo, mean, hi = r["delta_q025"], r["delta_mean"], r["delta_q975"]
        assert -1.0 <= lo <= mean <= hi <= 1.0, rid
        assert r["delta_sd"] > 0.0, rid
        # delta = theta_treated - theta_control draw by draw, so the means subtract exactly.
        assert math.isclose(mean, r["theta_treated_mean"] - r["theta_control_mean"], abs_tol=1e-9), rid
        for p in ("prob_dm", "lfsr", "pep"):
            assert 0.0 <= r[p] <= 1.0, (rid, p)
        assert r["lfsr"] <= 0.5 + eps, rid
        assert math.isclose(r["pep"], 1.0 - r["prob_dm"], abs_tol=eps), rid
        assert 0.0 <= r["phi_mean"] <= 1.0 and r["phi_sd"] >= 0.0, rid
        assert math.isfinite(r["elbo"]) and r["elbo"] < 0.0, rid
        assert math.isclose(r["elbo"], r["expected_loglik"] - r["kl"], rel_tol=1e-9), rid
        assert 0.0 <= r["p_null"] <= 1.0, rid
        assert 0.0 < r["khat_threshold"] <= 0.7, rid
        assert 1.0 <= r["ess"] <= 1000.0 + 1e-9, rid
        # The verdict: trustworthy by PSIS, or weights with a finite mean that move delta little.
        if r["reliable"]:
            assert (r["khat"] <= r["khat_threshold"] and r["ess"] >= 100) or (
                r["khat"] < 1.0 and r["delta_shift"] <= 0.2 and r["prob_dm_shift"] <= 0.02
            ), rid
        assert r["iterations"] > 0, rid
        # Structured was asked for; a refit of an unreliable fit climbs to the coupled family.
        assert r["family"] == "structured" or (r["family"] == "coupled" and r["refit"] > 0), rid
        assert r["n_samples"] == n_samples and r["n_sites"] >= 3, rid


def test_duckdb_sql_filter_on_called_regions(con, table: pa.Table, reference_run: Run) -> None:
    got = con.execute(
        "SELECT region_id, prob_dm, delta_mean FROM read_parquet(?) WHERE called "
        "ORDER BY prob_dm DESC, region_id",
        [str(reference_run.regions)],
    ).fetchall()
    called = table.filter(pc.field("called"))
    want = sorted(
        zip(called.column("region_id").to_pylist(), called.column("prob_dm").to_pylist(),
            called.column("delta_mean").to_pylist()),
        key=lambda t: (-t[1], t[0]),
    )
    assert got == want
    assert len(got) == reference_run.info()["pass2"]["regions_called"] > 0
    # Called regions are the ones most likely to differ by more than delta0.
    (max_uncalled,) = con.execute(
        "SELECT max(prob_dm) FROM read_parquet(?) WHERE NOT called", [str(reference_run.regions)]
    ).fetchone()
    assert min(p for _, p, _ in got) >= max_uncalled


def test_delta_intervals_cover_the_truth(con, dataset: Dataset, reference_run: Run) -> None:
    (n, covered, n_dmr, called, true_calls) = con.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE r.delta_q025 <= t.true_delta_treated
                                  AND t.true_delta_treated <= r.delta_q975),
               count(*) FILTER (WHERE t.is_dmr),
               count(*) FILTER (WHERE r.called),
               count(*) FILTER (WHERE r.called AND t.is_dmr)
        FROM read_parquet(?) r
        JOIN read_csv(?, delim='\t', header=true) t USING (region_id)
        """,
        [str(reference_run.regions), str(dataset.truth)],
    ).fetchone()
    assert n == reference_run.info()["pass2"]["pass"]["regions_used"] and n >= 200
    coverage = covered / n
    print(
        f"\n95% intervals of delta cover true_delta_treated in {covered}/{n} regions ({coverage:.3f}); "
        f"{called} called, {true_calls} of them true DMRs, of {n_dmr} simulated DMRs"
    )
    assert coverage >= 0.85
