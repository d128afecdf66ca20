{
  "format": 1,
  "repo": "acme/llm-7b",
  "revision": "20261202T151025Z-a430ca207bad",
  "manifest_sha256": "68adc4988b3a1d1ce043f2e2bb33f0ad5f7ce8b3f46ecbee1ac7752eceff7836",
  "created": "2026-12-02T15:10:25Z",
  "signatures": []
}