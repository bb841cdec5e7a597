/** On every sandbox this suite creates: the global setup sweeps what a crashed run left. */
export const TEST_LABELS = { "test-run": "kiln", "test-suite": "langchain" } as const;
