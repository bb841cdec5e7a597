// biome-ignore-all lint/correctness/noUnusedVariables: the README snippet appended after this prelude uses them
// What the langchain README's snippet leaves to the reader: a chat model that calls tools (here
// @langchain/core's scripted fakeModel: one run_code call, then an answer).
import { AIMessage as PreludeAIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";

const model = fakeModel()
  .respondWithTools([{ name: "run_code", args: { code: "print(sum(x * x for x in range(11)))" } }])
  .respond(new PreludeAIMessage("385"));
