"""Options: OCC contract symbols, pricing (Black-Scholes with a modelled volatility), option
chains for the simulated market, contract selection and premium-at-risk sizing."""
