# DSS side of the methvb comparison (see benches/compare/README.md).
#
# Usage: Rscript dss.R SHEET SMOOTHING OUT_PREFIX NCORES
#   SHEET      TSV with columns sample, group, path (path: DSS text table `chr pos N X`,
#              1-based, with a header line), as written by run.sh
#   SMOOTHING  TRUE or FALSE (DMLtest's `smoothing`; span = DSS default 500 bp)
#   OUT_PREFIX writes OUT_PREFIX.dml.tsv (DMLtest table), OUT_PREFIX.dmr.tsv (callDMR with DSS
#              defaults) and OUT_PREFIX.timing.tsv (seconds per step, from proc.time)
#   NCORES     DMLtest's ncores (BiocParallel workers)
#
# group1 = the non-reference group ("treated"), group2 = reference ("control"), so DSS's
# diff = mu1 - mu2 has the sign of methvb's delta (treated minus control).
suppressPackageStartupMessages(library(DSS))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4) stop("usage: Rscript dss.R SHEET SMOOTHING OUT_PREFIX NCORES")
sheet_path <- args[1]
smoothing <- as.logical(args[2])
out <- args[3]
ncores <- as.integer(args[4])

t0 <- proc.time()[["elapsed"]]
sheet <- read.delim(sheet_path, stringsAsFactors = FALSE)
ref <- sheet$group[1]
tabs <- lapply(sheet$path, function(p) {
  d <- read.table(p, header = TRUE, colClasses = c("character", "integer", "integer", "integer"))
  names(d) <- c("chr", "pos", "N", "X")
  d
})
bs <- makeBSseqData(tabs, sheet$sample)
t_read <- proc.time()[["elapsed"]]

group1 <- sheet$sample[sheet$group != ref]
group2 <- sheet$sample[sheet$group == ref]
dml <- if ("ncores" %in% names(formals(DMLtest))) {
  DMLtest(bs, group1 = group1, group2 = group2, smoothing = smoothing, ncores = ncores)
} else {
  DMLtest(bs, group1 = group1, group2 = group2, smoothing = smoothing)
}
t_dml <- proc.time()[["elapsed"]]

dmr <- callDMR(dml)
t_dmr <- proc.time()[["elapsed"]]

dml_df <- as.data.frame(dml)
keep <- intersect(c("chr", "pos", "mu1", "mu2", "diff", "diff.se", "stat", "pval", "pvals"),
                  names(dml_df))
write.table(dml_df[, keep], paste0(out, ".dml.tsv"), sep = "\t", quote = FALSE,
            row.names = FALSE)
dmr_df <- if (is.null(dmr) || NROW(dmr) == 0) {
  data.frame(chr = character(), start = integer(), end = integer(), nCG = integer(),
             diff.Methy = numeric(), areaStat = numeric())
} else {
  as.data.frame(dmr)[, c("chr", "start", "end", "nCG", "diff.Methy", "areaStat")]
}
write.table(dmr_df, paste0(out, ".dmr.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
timing <- data.frame(step = c("read", "DMLtest", "callDMR"),
                     seconds = c(t_read - t0, t_dml - t_read, t_dmr - t_dml))
write.table(timing, paste0(out, ".timing.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
cat(sprintf("DSS %s: %d CpGs, %d DMRs, DMLtest %.1f s, callDMR %.1f s, DSS %s\n",
            if (smoothing) "smoothing=TRUE" else "smoothing=FALSE", nrow(dml), NROW(dmr_df),
            t_dml - t_read, t_dmr - t_dml, as.character(packageVersion("DSS"))))
