// k6: the `breakpoint` shape (load/shapes.ts) against BASE_URL at TARGET_RPS. See load/README.md.
//   k6 run -e BASE_URL=https://nodescale.example -e TARGET_RPS=1000 load/scenarios/breakpoint.ts

import type { ArrivalShape } from "../shapes.ts";
import { type MixData, mixIteration, mixSetup, options as optionsFor, shapeFor, summary } from "./common.ts";

const shape = shapeFor("breakpoint") as ArrivalShape;

export const options = optionsFor(shape);
export const setup = (): MixData => mixSetup(shape);
export default (data: MixData): void => mixIteration(shape, data);
export const handleSummary = summary("breakpoint");
