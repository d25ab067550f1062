# DSS side of the design comparison (benches/compare/design.sh, see README.md "Designs").
#
# Usage: Rscript dss_design.R SHEET FORMULA OUT_PREFIX
#   SHEET      TSV with columns sample, group, path (DSS text table `chr pos N X`, 1-based, with
#              a header line) and the design columns the formula names (batch, donor), as
#              written by design.sh
#   FORMULA    e.g. "~ group", "~ group + batch", "~ group + donor"
#   OUT_PREFIX writes OUT_PREFIX.dml.tsv (DMLtest.multiFactor table), OUT_PREFIX.dmr.tsv
#              (callDMR on it, DSS defaults) and OUT_PREFIX.timing.tsv (seconds per step)
#
# Every design column is a factor whose first level is the first value in the sheet, so the
# group coefficient is "group<non-reference>": its statistic is positive when the non-reference
# group ("treated") is more methylated, the sign of methvb's delta.
suppressPackageStartupMessages(library(DSS))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript dss_design.R SHEET FORMULA OUT_PREFIX")
sheet_path <- args[1]
formula <- as.formula(args[2])
out <- args[3]

t0 <- proc.time()[["elapsed"]]
sheet <- read.delim(sheet_path, stringsAsFactors = FALSE, colClasses = "character")
tabs <- lapply(sheet$path, function(p) {
  d <- read.table(p, header = TRUE, colClasses = c("character", "integer", "integer", "integer"))
  names(d) <- c("chr", "pos", "N", "X")
  d
})
bs <- makeBSseqData(tabs, sheet$sample)
terms <- all.vars(formula)
missing <- setdiff(terms, names(sheet))
if (length(missing) > 0) {
  stop(sprintf("%s has no column %s for the formula %s", sheet_path,
               paste(missing, collapse = ", "), args[2]))
}
design <- data.frame(lapply(sheet[terms], function(x) factor(x, levels = unique(x))))
coef <- paste0("group", levels(design$group)[2])
t_read <- proc.time()[["elapsed"]]

fit <- DMLfit.multiFactor(bs, design = design, formula = formula)
t_fit <- proc.time()[["elapsed"]]
test <- DMLtest.multiFactor(fit, coef = coef)
t_test <- proc.time()[["elapsed"]]
dmr <- tryCatch(callDMR(test), error = function(e) {
  message("callDMR: ", conditionMessage(e))
  NULL
})
t_dmr <- proc.time()[["elapsed"]]

test_df <- as.data.frame(test)
keep <- intersect(c("chr", "pos", "stat", "pvals", "fdrs"), names(test_df))
write.table(test_df[, keep], paste0(out, ".dml.tsv"), sep = "\t", quote = FALSE,
            row.names = FALSE)
dmr_df <- if (is.null(dmr) || NROW(dmr) == 0) {
  data.frame(chr = character(), start = integer(), end = integer(), nCG = integer(),
             areaStat = numeric())
} else {
  as.data.frame(dmr)[, c("chr", "start", "end", "nCG", "areaStat")]
}
write.table(dmr_df, paste0(out, ".dmr.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
timing <- data.frame(step = c("read", "DMLfit.multiFactor", "DMLtest.multiFactor", "callDMR"),
                     seconds = c(t_read - t0, t_fit - t_read, t_test - t_fit, t_dmr - t_test))
write.table(timing, paste0(out, ".timing.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
cat(sprintf("DSS multiFactor %s, coef %s: %d CpGs, %d DMRs, fit %.1f s, test %.1f s, DSS %s\n",
            args[2], coef, nrow(test_df), NROW(dmr_df), t_fit - t_read, t_test - t_fit,
            as.character(packageVersion("DSS"))))
