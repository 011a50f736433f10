// The app's per-client limits, raised for load: a load generator is one client address
// sending what many users would, so the limits that protect the app from one abusive client
// would measure themselves instead of the app. One list, used by `make bench` and the load
// smoke test; the chart's kind values and `make local-up` say the same in their own terms.
export const LOAD_TEST_APP_ENV = {
  LOGIN_RATE_LIMIT_PER_MINUTE: "100000",
  REGISTER_RATE_LIMIT_PER_MINUTE: "100000",
  WORK_RATE_LIMIT_PER_MINUTE: "1000000",
} as const;
