# The sums `sync-agent stats` computes, per repository and in total, in awk,
# for scripts/bench-stats: requests, bytes, errors, downloads, the sum of
# download speeds, slow downloads, HITs and lines with a cache status.
# Fields are counted from the end for the two sync_agent fields, since the
# user agent may hold spaces. -v slow=BYTES_PER_SECOND.
{
  path = $7; q = index(path, "?"); if (q) path = substr(path, 1, q - 1)
  st = $9 + 0; b = $10 + 0; rt = $(NF - 1) + 0; cs = $NF
  n = split(path, p, "/"); repo = ""
  if (p[2] == "datasets") { if (n >= 5 && p[3] != "" && p[4] != "") repo = p[3] "/" p[4] }
  else if (n >= 4 && p[2] != "" && p[3] != "") repo = p[2] "/" p[3]
  dl = ($6 == "\"GET" && (st == 200 || st == 206) && b >= 1048576 && rt > 0)
  sp = dl ? b / rt : 0
  R[""]++; B[""] += b; if (st >= 400) E[""]++
  if (dl) { D[""]++; S[""] += sp; if (sp < slow) L[""]++ }
  if (cs != "-") { C[""]++; if (cs == "HIT") H[""]++ }
  if (repo != "") {
    R[repo]++; B[repo] += b; if (st >= 400) E[repo]++
    if (dl) { D[repo]++; S[repo] += sp; if (sp < slow) L[repo]++ }
    if (cs != "-") { C[repo]++; if (cs == "HIT") H[repo]++ }
  }
}
END {
  for (r in R)
    printf "%s %.0f %.0f %.0f %.0f %.6f %.0f %.0f %.0f\n", (r == "" ? "TOTAL" : r), R[r], B[r],
           E[r], D[r], S[r], L[r], H[r], C[r]
}
