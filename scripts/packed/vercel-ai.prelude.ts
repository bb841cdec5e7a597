// biome-ignore-all lint/correctness/noUnusedVariables lint/correctness/noUnusedImports: the README snippet appended after this prelude uses them
// What the vercel-ai README's snippet leaves to the reader: a model (the AI SDK's MockLanguageModelV4,
// one run_code call, then an answer) and a chat id.
import { chatId, scriptedModel } from "./scripted-model.ts";

const model = scriptedModel();
