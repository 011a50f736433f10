// k6: the `sessions` shape (load/shapes.ts): each VU registers and logs in once, then loops
// over /api/me, item reads and write-then-read with a read-your-writes check. See load/README.md.
//   k6 run -e BASE_URL=https://nodescale.example -e TARGET_RPS=1000 load/scenarios/sessions.ts

import type { VuShape } from "../shapes.ts";
import {
  options as optionsFor,
  type SessionData,
  sessionIteration,
  sessionSetup,
  shapeFor,
  summary,
} from "./common.ts";

const shape = shapeFor("sessions") as VuShape;

export const options = optionsFor(shape);
export const setup = (): SessionData => sessionSetup();
export default (data: SessionData): void => sessionIteration(shape, data);
export const handleSummary = summary("sessions");
