/**
 * Loaded with `--import` into every app process: installs {@link resolve} from
 * sdk-loader so that `import { connect } from 'upgossip/app'` works.
 */
import { register } from 'node:module'

register(new URL('./sdk-loader.js', import.meta.url))
