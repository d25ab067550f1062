"""methvb's per-region model in NumPyro: NUTS (reference) and mean-field SVI (AutoNormal),
Theta fixed to methvb's hyper.json, against methvb VB and methvb NUTS on the same regions.

Usage: python numpyro_compare.py --dir SIZE_DIR --bin METHVB [--regions 50] [--seed 1]

SIZE_DIR is a run.sh size directory (sim/ from `methvb simulate`, methvb/hyper.json from
`methvb run`). Steps:
  1. pick --regions regions at random (seeded), write their sites as a small bedMethyl subset
     (same 18-column records), so that methvb's timing is the fit and not the I/O of all sites;
  2. `methvb --threads 1 run --hyper-json hyper.json --mcmc-check N` on the subset: VB of every
     region (run.json pass2.seconds / regions) and methvb's NUTS audit of all of them
     (mcmc_check.parquet, run.json mcmc_check.median_seconds); run twice, with the defaults
     (importance sampling and refit ladder) and with `--max-refit 0` (one fit and its 1000
     importance draws: SVI's work plus the correction);
  3. the same model in NumPyro (MODEL.md, docs/model.md): non-centred site effects, symmetric
     group offsets a -/+ b/2, the scale-mixture prior of b from hyper.json's b_prior
     (MixtureSameFamily over its components with non-zero weight), beta-binomial
     likelihood with missing cells (n = 0) masked. Sites are padded to a fixed count so that
     JAX compiles once; padded sites carry no data and are left out of theta_g / delta.
     NUTS: 4 chains x (500 warm-up + 1000 draws), vectorized chains, target accept 0.8.
     SVI: AutoNormal (mean-field), Trace_ELBO with 1 particle, Adam(0.01), SVI_STEPS steps,
     delta from 1000 draws of the guide. Single-threaded XLA.
  4. agreement with NUTS: z = (E_vb - E_nuts) / sd_nuts and sd_vb / sd_nuts per region for
     delta, a, b, k; printed as mean |z| and median sd ratio, once with NumPyro NUTS as the
     reference (the first --nuts-regions regions; NumPyro NUTS is slow on CPU) and once with
     methvb's NUTS audit as the reference (all regions). NumPyro NUTS vs methvb NUTS on the
     shared regions checks that the two implement the same posterior.
Writes SIZE_DIR/numpyro/agreement.tsv and prints a Markdown table.
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import pandas as pd  # noqa: E402
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402

jax.config.update("jax_enable_x64", True)  # methvb works in f64

SVI_STEPS = int(os.environ.get("SVI_STEPS", "3000"))
SVI_LR = float(os.environ.get("SVI_LR", "0.01"))


def load_subset(d: Path, n_regions: int, seed: int, out: Path):
    """Pick regions, write the bedMethyl subset + sheet + BED; return per-region count arrays."""
    truth = pd.read_csv(d / "sim" / "truth.tsv", sep="\t")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(truth), size=min(n_regions, len(truth)), replace=False))
    reg = truth.iloc[pick].reset_index(drop=True)
    sheet = pd.read_csv(d / "sim" / "samples.tsv", sep="\t")
    out.mkdir(parents=True, exist_ok=True)
    reg[["chrom", "start", "end", "region_id"]].to_csv(out / "regions.bed", sep="\t",
                                                        header=False, index=False)
    groups = list(dict.fromkeys(sheet["group"]))
    per_sample = []
    new_paths = []
    for s in sheet.itertuples():
        bed = pd.read_csv(d / "sim" / s.path, sep="\t", header=None, dtype={0: str})
        bed = bed[bed[3] == "m"]
        keep = np.zeros(len(bed), dtype=bool)
        ridx = np.full(len(bed), -1)
        for i, r in reg.iterrows():
            sel = ((bed[0] == r.chrom) & (bed[1] >= r.start) & (bed[1] < r.end)).to_numpy()
            keep |= sel
            ridx[sel] = i
        sub = bed[keep]
        path = out / f"{s.sample}.bed"
        sub.to_csv(path, sep="\t", header=False, index=False)
        new_paths.append(path.name)
        per_sample.append(pd.DataFrame({"region": ridx[keep], "pos": sub[1].to_numpy(),
                                        "n": sub[9].to_numpy(), "m": sub[11].to_numpy()}))
    sh = sheet[["sample", "group"]].copy()
    sh["path"] = new_paths
    sh.to_csv(out / "samples.tsv", sep="\t", index=False)

    g_of_sample = np.array([groups.index(g) for g in sheet["group"]], dtype=float)
    S = len(sheet)
    regions = []
    for i in range(len(reg)):
        pos = sorted(set().union(*[set(p.loc[p.region == i, "pos"]) for p in per_sample]))
        m = np.zeros((len(pos), S))
        n = np.zeros((len(pos), S))
        for s, p in enumerate(per_sample):
            q = p[p.region == i].set_index("pos")
            n[:, s] = q["n"].reindex(pos, fill_value=0).to_numpy()
            m[:, s] = q["m"].reindex(pos, fill_value=0).to_numpy()
        # methvb's default filters: --min-cov 1, --min-samples-per-group 1, --min-sites 3
        ok = np.all([(n[:, g_of_sample == g] >= 1).sum(axis=1) >= 1
                     for g in range(len(groups))], axis=0)
        m, n = m[ok], n[ok]
        if len(m) >= 3:
            regions.append((reg.region_id[i], m, n))
    return regions, g_of_sample, groups


def make_model(theta: dict, g: np.ndarray):
    prior = theta["b_prior"]
    keep = [i for i, w in enumerate(prior["weight"]) if w > 0]
    probs = jnp.array([prior["weight"][i] for i in keep])
    sds = jnp.array([prior["sd"][i] for i in keep])
    # Two groups: offsets -b/2 for the model's group 0, +b/2 for group 1 (docs/model.md).
    half = jnp.asarray(g) - 0.5

    def model(m, n, site_mask):
        a = numpyro.sample("a", dist.Normal(theta["mu_a"], theta["sd_a"]))
        b = numpyro.sample("b", dist.MixtureSameFamily(dist.Categorical(probs=probs),
                                                       dist.Normal(jnp.zeros(len(keep)), sds)))
        w = numpyro.sample("w", dist.Normal(theta["mu_w"], theta["sd_w"]))
        k = numpyro.sample("k", dist.Normal(theta["mu_k"], theta["sd_k"]))
        with numpyro.plate("sites", m.shape[0]):
            v = numpyro.sample("v", dist.Normal(0.0, 1.0))
        eta = a + b * half[None, :] + jnp.exp(w) * v[:, None]
        p = jax.nn.sigmoid(eta)
        kappa = jnp.exp(k)
        obs = (n > 0) & (site_mask[:, None] > 0)
        numpyro.sample("y", dist.BetaBinomial(p * kappa, (1.0 - p) * kappa,
                                              total_count=n.astype(jnp.int64)).mask(obs),
                       obs=m.astype(jnp.int64))

    return model


def delta_draws(a, b, w, v, site_mask):
    """theta_1 - theta_0 per draw; a, b, w: (D,), v: (D, J)."""
    keep = site_mask > 0
    ew = np.exp(w)[:, None] * v[:, keep]
    t0 = 1 / (1 + np.exp(-(a[:, None] - 0.5 * b[:, None] + ew)))
    t1 = 1 / (1 + np.exp(-(a[:, None] + 0.5 * b[:, None] + ew)))
    return t1.mean(axis=1) - t0.mean(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--regions", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nuts-regions", type=int, default=None,
                    help="NumPyro NUTS on the first N regions only (default: all)")
    args = ap.parse_args()
    out = args.dir / "numpyro"
    hyper = json.loads((args.dir / "methvb" / "hyper.json").read_text())
    theta = hyper.get("theta", hyper)

    regions, g, groups = load_subset(args.dir, args.regions, args.seed, out / "data")
    R = len(regions)
    if args.nuts_regions is None:
        args.nuts_regions = R

    # methvb on the subset: VB (pass 2) and its NUTS audit of every region, one thread; once
    # with the run defaults (PSIS check + refit ladder) and once with --max-refit 0 (the same
    # work as SVI plus one PSIS check: one fit, 400 PSIS draws, 1000 summary draws)
    def methvb_on_subset(name, extra):
        mv_out = out / name
        subprocess.run([args.bin, "--quiet", "--threads", "1", "run", "--samples",
                        str(out / "data" / "samples.tsv"), "--regions", str(out / "data" / "regions.bed"),
                        "--hyper-json", str(args.dir / "methvb" / "hyper.json"),
                        "--mcmc-check", str(R), "--out", str(mv_out), *extra], check=True)
        run = json.loads((mv_out / "run.json").read_text())
        p2 = run["pass2"].get("pass", run["pass2"])
        return (p2["seconds"] / max(p2["regions_used"], 1), run["mcmc_check"]["median_seconds"],
                pd.read_parquet(mv_out / "mcmc_check.parquet"))

    mv_vb_s, mv_nuts_s, audit = methvb_on_subset("methvb", [])
    mv_norefit_s, _, audit_norefit = methvb_on_subset("methvb_norefit", ["--max-refit", "0"])

    # NumPyro
    jmax = max(m.shape[0] for _, m, _ in regions)
    model = make_model(theta, g)
    guide = AutoNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(SVI_LR), Trace_ELBO())

    def svi_fit(key, m, n, mask):
        state = svi.init(key, m, n, mask)
        state = jax.lax.fori_loop(0, SVI_STEPS, lambda i, st: svi.update(st, m, n, mask)[0], state)
        return svi.get_params(state)

    svi_fit = jax.jit(svi_fit)
    mcmc = MCMC(NUTS(model, target_accept_prob=0.8), num_warmup=500, num_samples=1000,
                num_chains=4, chain_method="vectorized", progress_bar=False, jit_model_args=True)

    def pad(m, n):
        J = m.shape[0]
        mm = np.zeros((jmax, m.shape[1]))
        nn = np.zeros((jmax, m.shape[1]))
        mm[:J], nn[:J] = m, n
        mask = np.zeros(jmax)
        mask[:J] = 1
        return jnp.asarray(mm), jnp.asarray(nn), jnp.asarray(mask)

    key = jax.random.PRNGKey(args.seed)
    # compile once on the first region (timed separately)
    m0, n0, k0 = pad(regions[0][1], regions[0][2])
    t = time.perf_counter()
    jax.block_until_ready(svi_fit(key, m0, n0, k0))
    svi_compile = time.perf_counter() - t
    nuts_first = float("nan")
    if args.nuts_regions > 0:
        t = time.perf_counter()
        mcmc.run(key, m0, n0, k0)
        jax.block_until_ready(mcmc.get_samples())
        nuts_first = time.perf_counter() - t

    rows = []
    svi_times, nuts_times = [], []
    rng = np.random.default_rng(args.seed)
    bq = "b"
    qmap = (("delta", "delta"), ("a", "a"), ("b", bq), ("k", "k"))
    nuts_rhat, nuts_div = [], 0
    for i, (rid, m, n) in enumerate(regions):
        mm, nn, mask = pad(m, n)
        maskn = np.asarray(mask)
        key, k1, k2 = jax.random.split(key, 3)
        t = time.perf_counter()
        params = jax.block_until_ready(svi_fit(k1, mm, nn, mask))
        svi_times.append(time.perf_counter() - t)
        loc = {s: np.asarray(params[f"{s}_auto_loc"]) for s in ("a", "b", "w", "k", "v")}
        sc = {s: np.asarray(params[f"{s}_auto_scale"]) for s in ("a", "b", "w", "k", "v")}
        dr = {s: loc[s] + sc[s] * rng.standard_normal((1000,) + loc[s].shape) for s in loc}
        d_svi = delta_draws(dr["a"], dr["b"], dr["w"], dr["v"], maskn)
        cand = {"numpyro SVI (AutoNormal)": {"delta": (d_svi.mean(), d_svi.std(ddof=1)),
                                             "a": (loc["a"], sc["a"]), "b": (loc["b"], sc["b"]),
                                             "k": (loc["k"], sc["k"])}}
        a_reg = audit[audit.region_id == rid].set_index("quantity")
        a_nr = audit_norefit[audit_norefit.region_id == rid].set_index("quantity")
        refs = {}
        if len(a_reg):
            cand["methvb VB (run default)"] = {
                q: (a_reg.loc[mq, "vb_mean"], a_reg.loc[mq, "vb_sd"]) for q, mq in qmap}
            if len(a_nr):
                cand["methvb VB (--max-refit 0)"] = {
                    q: (a_nr.loc[mq, "vb_mean"], a_nr.loc[mq, "vb_sd"]) for q, mq in qmap}
            refs["methvb NUTS"] = {
                q: (a_reg.loc[mq, "mcmc_mean"], a_reg.loc[mq, "mcmc_sd"]) for q, mq in qmap}
        if i < args.nuts_regions:
            t = time.perf_counter()
            mcmc.run(k2, mm, nn, mask, extra_fields=("diverging",))
            smp = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
            nuts_times.append(time.perf_counter() - t)
            flat = {k: np.asarray(v).reshape((-1,) + np.asarray(v).shape[2:])
                    for k, v in smp.items()}
            d_nuts = delta_draws(flat["a"], flat["b"], flat["w"], flat["v"], maskn)
            nuts_rhat.append(float(numpyro.diagnostics.split_gelman_rubin(d_nuts.reshape(4, -1))))
            nuts_div += int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
            nuts = {"delta": (d_nuts.mean(), d_nuts.std(ddof=1))}
            nuts.update({q: (flat[q].mean(), flat[q].std(ddof=1)) for q in ("a", "b", "k")})
            refs["numpyro NUTS"] = nuts
            if "methvb NUTS" in refs:
                cand["methvb NUTS (audit)"] = refs["methvb NUTS"]
        for ref_name, ref in refs.items():
            for name, c in cand.items():
                if name == "methvb NUTS (audit)" and ref_name == "methvb NUTS":
                    continue
                for q in ref:
                    rows.append(dict(region_id=rid, reference=ref_name, method=name, quantity=q,
                                     z=(float(c[q][0]) - ref[q][0]) / ref[q][1],
                                     sd_ratio=float(c[q][1]) / ref[q][1], n_sites=m.shape[0]))
    ag = pd.DataFrame(rows)
    ag.to_csv(out / "agreement.tsv", sep="\t", index=False)

    def summ(ref_name, name, q):
        s = ag[(ag.reference == ref_name) & (ag.method == name) & (ag.quantity == q)]
        if s.empty:
            return "-", "-"
        return f"{s.z.abs().mean():.3f}", f"{s.sd_ratio.median():.3f}"

    audited = audit.region_id.nunique()
    nn_done = len(nuts_times)
    per_region = {
        "numpyro NUTS": (np.median(nuts_times) if nuts_times else float("nan"),
                         f"4 chains x (500+1000), vectorized; {nn_done} regions timed"),
        "numpyro SVI (AutoNormal)": (np.median(svi_times),
                                     f"{SVI_STEPS} Adam({SVI_LR}) steps, 1 particle"),
        "methvb VB (run default)": (mv_vb_s,
                                    "pass2.seconds / regions: structured + PSIS + refits + summaries"),
        "methvb VB (--max-refit 0)": (mv_norefit_s,
                                      "pass2.seconds / regions: one structured fit + PSIS + summaries"),
        "methvb NUTS (audit)": (mv_nuts_s, "run.json mcmc_check.median_seconds, 4 x (500+1000)"),
    }
    print(f"\n# NumPyro {numpyro.__version__}, JAX {jax.__version__}; {R} regions "
          f"(J = {min(m.shape[0] for _, m, _ in regions)}..{jmax}, padded to {jmax}); "
          f"methvb audited {audited}; NumPyro NUTS on the first {nn_done}; "
          f"Theta from {args.dir / 'methvb' / 'hyper.json'}")
    print(f"# one-off JIT: SVI compile+first fit {svi_compile:.1f} s, NUTS compile+first run "
          f"{nuts_first:.1f} s (not in the per-region figures)")
    if nuts_rhat:
        print(f"# NumPyro NUTS: max split R-hat of delta {max(nuts_rhat):.3f}, "
              f"{nuts_div} divergences over {nn_done} regions")
    print("\n| method | s / region (median) | speed-up vs NumPyro SVI | settings |")
    print("|---|---|---|---|")
    svi_s = per_region["numpyro SVI (AutoNormal)"][0]
    for name, (sec, how) in per_region.items():
        print(f"| {name} | {sec:.4g} | {svi_s / sec:.3g}x | {how} |")
    for ref_name in ("numpyro NUTS", "methvb NUTS"):
        n_ref = ag[ag.reference == ref_name].region_id.nunique()
        print(f"\nAgreement with {ref_name} ({n_ref} regions): mean |z| and median sd ratio")
        print("| method | mean abs z delta | median sd ratio delta | mean abs z a | "
              "median sd ratio a | mean abs z b | median sd ratio b | mean abs z k | median sd ratio k |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in ag[ag.reference == ref_name].method.unique():
            cells = []
            for q in ("delta", "a", "b", "k"):
                cells += list(summ(ref_name, name, q))
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
